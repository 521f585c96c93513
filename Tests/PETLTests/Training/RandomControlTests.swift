import XCTest
@testable import PETLModel
@testable import PETLData
@testable import PETLTraining

final class RandomControlTests: XCTestCase {
  /// Training the `random` control changes exactly K scalars, the same K for the same seed, and its
  /// gradient slab (what the all-reduce sends) holds exactly K values.
  func testExactlyKParametersChange() throws {
    let k = 37
    var changedSets: [Set<Int>] = []
    for seed: UInt64 in [5, 5, 6] {
      let m = TestSupport.tinyModel()
      let before = m.snapshot()
      let set = try TrainableSet(modules: ["random"], layers: .all, layout: m.layout, randomCount: k, seed: seed)
      let head = try TrainableSet(modules: ["classifier"], layers: .all, layout: m.layout)
      XCTAssertEqual(set.count, k + head.count)
      let step = TrainingStep(model: m, trainable: set, optimizer: .adamw, weightDecay: 0.01, maxGradNorm: 1)
      for s in 0..<2 { step.run(TestSupport.tinyBatch(), lr: 1e-2, dropoutKey: UInt64(s)) }
      let after = m.snapshot()
      let headRange = m.layout.range(of: .classifier)
      let changed = Set(before.indices.filter { before[$0] != after[$0] && !headRange.contains($0) })
      XCTAssertEqual(changed.count, k, "seed \(seed)")
      XCTAssertTrue(changed.allSatisfy { i in m.layout.slots.first { $0.range.contains(i) }!.layer != nil }, "all in the encoder")
      changedSets.append(changed)
    }
    XCTAssertEqual(changedSets[0], changedSets[1], "same seed, same scalars")
    XCTAssertNotEqual(changedSets[0], changedSets[2], "another seed, other scalars")
  }
}

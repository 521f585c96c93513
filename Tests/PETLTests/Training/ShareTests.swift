import XCTest
@testable import PETLKernels
@testable import PETLTraining

/// Data-parallel shares of a batch: every example exactly once, in order, balanced by tokens.
final class ShareTests: XCTestCase {
  func testSharesPartitionTheBatchByTokens() {
    var rng = SeededGenerator(seed: 3)
    let examples = (0..<40).map { _ in
      EncodedExample(ids: [Int32](repeating: 1, count: 5 + Int(rng.next() % 120)), types: [], label: 0)
    }
    for ranks in 1...5 {
      for (start, count) in [(0, 40), (3, 17), (10, 5), (38, 2), (0, 1)] {
        let global = Array(0..<40)[start..<(start + count)]
        let shares = (0..<ranks).map { TaskData.share(examples, of: global, rank: $0, ranks: ranks) }
        XCTAssertEqual(shares.flatMap { $0 }, Array(global), "ranks \(ranks) batch \(start)+\(count)")
        if count >= ranks { XCTAssertFalse(shares.contains { $0.isEmpty }, "ranks \(ranks): an empty share") }
        let tokens = shares.map { $0.reduce(0) { $0 + examples[$1].ids.count } }
        let total = tokens.reduce(0, +), longest = global.map { examples[$0].ids.count }.max()!
        if count >= 4 * ranks {
          for t in tokens { XCTAssertLessThanOrEqual(abs(t - total / ranks), longest, "ranks \(ranks): \(tokens)") }
        }
      }
    }
  }
}

import XCTest
@testable import PETLModel
@testable import PETLTraining
@testable import PETLStudy

/// The cluster numbers' model: BERT-base's size from its config, the paper preset's plan, and the
/// dispatcher replay against the bounds every schedule obeys.
final class DispatchSimulationTests: XCTestCase {
  /// BERT-base by hand: embeddings 30522*768 + 512*768 + 2*768 + LayerNorm 2*768 = 23,837,184; each
  /// layer q, k, v, attention output 4*(768*768 + 768) + LayerNorm 1,536 + intermediate 768*3072 + 3072
  /// + output 3072*768 + 768 + LayerNorm 1,536 = 7,087,872, x12 = 85,054,464; pooler 768*768 + 768 =
  /// 590,592: 109,482,240 (the count usually quoted), and the two-label head 768*2 + 2 = 1,538.
  func testBertBaseParameterCountFromItsConfig() throws {
    let layout = StudyScale.layout(StudyScale.bertBase)
    XCTAssertEqual(layout.count, 109_482_240 + 1_538)
    let sizes = Dictionary(uniqueKeysWithValues: try StudyScale.trainableSizes(layout).map { ($0.name, $0.scalars) })
    XCTAssertEqual(sizes["classifier"], 1_538)
    XCTAssertEqual(sizes["layernorm"], 12 * 2 * 2 * 768 + 1_538)
    XCTAssertEqual(sizes["query"], 12 * (768 * 768 + 768) + 1_538)
    XCTAssertEqual(sizes["full"], layout.count)
  }

  /// 10 module-wise sets (full, BitFit, head, seven module types) + 7 module types x 12 layers = 94
  /// sets, x 3 learning rates, x (4 small tasks x 5 seeds + 4 large x 3) = 9,024 cells.
  func testPaperPlanOnEightGLUETasks() throws {
    let plan = try StudyScale.paperPlan()
    XCTAssertEqual(plan.cells.count, 94 * 3 * 32)
    XCTAssertEqual(Set(plan.cells.map(\.task)), Set(StudyScale.glueTasks))
    XCTAssertTrue(plan.planned.allSatisfy { $0.parent == nil })
  }

  func testAllReduceModel() {
    let net = DispatchSimulation.Network(latency: 1e-4, bandwidth: 1e9)
    XCTAssertEqual(net.allreduceSeconds(bytes: 4e6, ranks: 1), 0)
    XCTAssertEqual(net.allreduceSeconds(bytes: 4e6, ranks: 2), 1e-4 + 4e-3, accuracy: 1e-12)
    XCTAssertEqual(net.allreduceSeconds(bytes: 4e6, ranks: 8), 3e-4 + 1.75 * 4e-3, accuracy: 1e-12)
  }

  /// Any list schedule ends between max(work / ranks, longest cell) and work / ranks + longest cell
  /// (Graham); one group runs everything back to back; as many groups as cells end with the longest.
  func testMakespanAgainstItsBounds() throws {
    let plan = try StudyScale.paperPlan()
    let cells = Array(plan.planned.filter { ["rte", "mrpc"].contains($0.spec.task) })
    let cost = CostModel(layout: StudyScale.layout(StudyScale.bertBase))
    let sim = DispatchSimulation(secondsPerUnit: 0.04, network: .init(latency: 1e-4, bandwidth: 1e9))
    let one = try sim.run(cells, cost: cost, ranks: 1, dp: 1)
    XCTAssertEqual(one.makespan, one.work, accuracy: 1e-9 * one.work)
    XCTAssertEqual(one.communication, 0)
    for (ranks, dp) in [(8, 1), (64, 1), (64, 4), (512, 8)] {
      let o = try sim.run(cells, cost: cost, ranks: ranks, dp: dp)
      XCTAssertGreaterThanOrEqual(o.makespan, o.bound * (1 - 1e-12), "\(ranks)/\(dp)")
      XCTAssertLessThanOrEqual(o.makespan, o.workBound + o.longestCell, "\(ranks)/\(dp)")
      XCTAssertEqual(o.cells, cells.count)
      if dp > 1 { XCTAssertGreaterThan(o.communication, 0) }
    }
    let wide = try sim.run(cells, cost: cost, ranks: cells.count, dp: 1)
    XCTAssertEqual(wide.makespan, wide.longestCell, accuracy: 1e-9 * wide.longestCell)
    // Ideal overlap hides all-reduce time (never adds any) in every cell.
    let hidden = DispatchSimulation(secondsPerUnit: 0.04, network: sim.network, overlap: true)
    let plain = try sim.run(cells, cost: cost, ranks: 64, dp: 8), overlapped = try hidden.run(cells, cost: cost, ranks: 64, dp: 8)
    XCTAssertLessThan(overlapped.communication, plain.communication)
    XCTAssertLessThanOrEqual(overlapped.work, plain.work)
    XCTAssertThrowsError(try sim.run(cells, cost: cost, ranks: 6, dp: 4))
  }
}

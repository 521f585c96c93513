import Foundation
import XCTest
@testable import PETLData
import PETLSupport

/// `evaluate` against scikit-learn and SciPy on the committed fixture (reference/metrics_fixtures.py),
/// and the degenerate inputs that must give 0 or an error, never NaN or a trap.
final class MetricsTests: XCTestCase {
  struct Fixture: Decodable {
    struct Case: Decodable {
      let name: String
      let task: String
      let split: String
      let outputs: [[Double]]
      let labels: [Double]
      let expected: [String: Double]
    }
    let cases: [Case]
  }

  func testMatchesScikitLearnAndSciPy() throws {
    let url = TestSupport.fixtures.appendingPathComponent("data/metrics.json")
    let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    XCTAssertEqual(fixture.cases.count, 13)
    for c in fixture.cases {
      let got = try evaluate(task: try TaskDescriptor.named(c.task), split: c.split,
                             outputs: c.outputs.map { $0.map(Float.init) }, labels: c.labels.map(Float.init))
      XCTAssertEqual(Set(got.keys), Set(c.expected.keys), c.name)
      for (key, want) in c.expected {
        let value = try XCTUnwrap(got[key], "\(c.name) \(key)")
        XCTAssertLessThanOrEqual(abs(value - want), 1e-9 * abs(want), "\(c.name) \(key): \(value) vs \(want)")
      }
    }
  }

  func testEveryTaskReportsItsMetricNames() throws {
    for task in TaskDescriptor.all {
      let width = task.isRegression ? 1 : task.numLabels
      let outputs: [[Float]] = [(0..<width).map(Float.init), [Float](repeating: 0, count: width)]
      let labels: [Float] = task.isRegression ? [1.5, 2] : [0, 1]
      var keys = Set<String>()
      for split in task.devSplits {
        keys.formUnion(try evaluate(task: task, split: split, outputs: outputs, labels: labels).keys)
      }
      XCTAssertEqual(keys, Set(task.metricNames), task.name)
    }
  }

  /// The rung's ranking loss: cross-entropy as torch.nn.functional.cross_entropy computes it (values
  /// worked by hand: log(e^2 + e^0) - 2 = 0.126928, log(e^-1 + e^3) - (-1) = 4.018150), MSE for STS-B.
  func testMeanLossIsCrossEntropyOrSquaredError() throws {
    let rte = try TaskDescriptor.named("rte"), stsb = try TaskDescriptor.named("stsb")
    XCTAssertEqual(meanLoss(task: rte, outputs: [[2, 0], [-1, 3]], labels: [0, 0]), (0.126928 + 4.018150) / 2, accuracy: 1e-6)
    // Large logits must not overflow (shifted by the maximum).
    XCTAssertEqual(meanLoss(task: rte, outputs: [[1000, 0]], labels: [0]), 0, accuracy: 1e-12)
    XCTAssertEqual(meanLoss(task: stsb, outputs: [[1.5], [4]], labels: [2, 4]), 0.125, accuracy: 1e-9)
    // What `evaluate` refuses is NaN here, never a trap: a label past the logits, a fractional label.
    XCTAssertTrue(meanLoss(task: rte, outputs: [[2, 0]], labels: [2]).isNaN)
    XCTAssertTrue(meanLoss(task: rte, outputs: [[2, 0]], labels: [0.5]).isNaN)
    XCTAssertTrue(meanLoss(task: rte, outputs: [], labels: []).isNaN)
  }

  func testArgmaxTakesTheFirstMaximum() {
    XCTAssertEqual(argmax([0.5, 0.5]), 0)
    XCTAssertEqual(argmax([-1, 2, 2]), 1)
    XCTAssertEqual(argmax([3]), 0)
  }

  func testAverageRanksOfTies() {
    XCTAssertEqual(averageRanks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
    XCTAssertEqual(averageRanks([3, 1, 3, 3]), [3, 1, 3, 3])
    XCTAssertEqual(averageRanks([7, 7]), [1.5, 1.5])
  }

  func testDegenerateInputsGiveZeroNotNaN() throws {
    let cola = try TaskDescriptor.named("cola")
    let constant = try evaluate(task: cola, outputs: [[0, 1], [0, 1], [0, 1]], labels: [0, 1, 1])
    XCTAssertEqual(constant["mcc"], 0)
    let oneClass = try evaluate(task: cola, outputs: [[0, 1], [1, 0]], labels: [1, 1])
    XCTAssertEqual(oneClass["mcc"], 0)
    let stsb = try TaskDescriptor.named("stsb")
    let flat = try evaluate(task: stsb, outputs: [[2], [2], [2]], labels: [1, 2, 3])
    XCTAssertEqual(flat, ["pearson": 0, "spearman": 0])
    let flatGold = try evaluate(task: stsb, outputs: [[1], [2], [3]], labels: [4, 4, 4])
    XCTAssertEqual(flatGold, ["pearson": 0, "spearman": 0])
    let perfect = try evaluate(task: stsb, outputs: [[1], [2], [3]], labels: [2, 4, 6])
    XCTAssertEqual(perfect["pearson"]!, 1, accuracy: 1e-15)
    XCTAssertEqual(perfect["spearman"]!, 1, accuracy: 1e-15)
    let mrpc = try TaskDescriptor.named("mrpc")
    XCTAssertEqual(try evaluate(task: mrpc, outputs: [[1, 0]], labels: [0]), ["f1": 0, "accuracy": 1])
  }

  func testBadInputIsAnError() throws {
    let rte = try TaskDescriptor.named("rte")
    XCTAssertThrowsError(try evaluate(task: rte, outputs: [], labels: []))
    XCTAssertThrowsError(try evaluate(task: rte, outputs: [[0, 1]], labels: [0, 1]))
    XCTAssertThrowsError(try evaluate(task: rte, outputs: [[0, 1, 2]], labels: [0]))
    XCTAssertThrowsError(try evaluate(task: rte, outputs: [[0, .nan]], labels: [0]))
    XCTAssertThrowsError(try evaluate(task: rte, outputs: [[0, 1]], labels: [2]))
    XCTAssertThrowsError(try evaluate(task: rte, outputs: [[0, 1]], labels: [0.5]))
    XCTAssertThrowsError(try evaluate(task: rte, split: "dev_mismatched", outputs: [[0, 1]], labels: [0]))
    do {
      _ = try evaluate(task: rte, outputs: [], labels: [])
    } catch {
      XCTAssertEqual(error as? PETLError, PETLError("evaluate rte: no examples"))
    }
  }
}

import Foundation
import XCTest
@testable import PETLData
@testable import PETLTraining
@testable import PETLStudy

/// The report's statistics and the paper's claims, on a synthetic journal whose answers are known.
final class ClaimsTests: XCTestCase {
  func testBootstrapIntervalOfAccuracy() throws {
    let task = try TaskDescriptor.named("rte")
    // 400 of 500 right: accuracy 0.8, binomial SE 0.0179, so the 95% interval is about ±0.035.
    let labels = (0..<500).map { Float($0 % 2) }
    let outputs = labels.enumerated().map { i, y -> [Float] in
      let right = i % 5 != 0
      return (y == 1) == right ? [0, 1] : [1, 0]
    }
    let i = try XCTUnwrap(Bootstrap.interval(task: task, outputs: outputs, labels: labels, seed: 1))
    XCTAssertLessThan(i[0], 0.8); XCTAssertGreaterThan(i[1], 0.8)
    XCTAssertEqual(i[1] - i[0], 2 * 1.96 * (0.8 * 0.2 / 500).squareRoot(), accuracy: 0.015)
    XCTAssertEqual(Bootstrap.interval(task: task, outputs: outputs, labels: labels, seed: 1), i, "seeded")
  }

  func testSpearman() {
    XCTAssertEqual(ReportFindings.spearman([(1, 10), (2, 20), (3, 30), (4, 35)]), 1, accuracy: 1e-12)
    XCTAssertEqual(ReportFindings.spearman([(1, 4), (2, 3), (3, 2), (4, 1)]), -1, accuracy: 1e-12)
    XCTAssertEqual(ReportFindings.spearman([(1, 1), (2, 1), (3, 2), (4, 2)]), 0.894, accuracy: 1e-3, "ties get average ranks")
  }

  static func record(_ modules: [TrainableModule], _ layers: LayerSelection, score: Double, interval: [Double]? = nil,
                     trainable: Int, meanAbs: Double? = nil, randomCount: Int? = nil,
                     selection: LearningRateSelection? = nil) -> JournalRecord {
    var o = TrainOptions()
    o.seed = 1
    if selection != nil { o.learningRate = 0; o.learningRateCandidates = selection!.candidates.map(\.learningRate) }
    let spec = CellSpec(task: "rt-vader", modules: modules, layers: layers, randomCount: randomCount, model: "m", options: o)
    var r = CellResult(status: .ok, dev: ["accuracy": score], trainableParameters: trainable, totalParameters: 1000, steps: 10)
    r.devInterval = interval
    r.pretrainedMeanAbs = meanAbs
    r.moved = meanAbs.map { 0.01 / $0 }
    r.selection = selection
    return JournalRecord(spec: spec, result: r, worker: 0)
  }

  func testClaimsHaveVerdictsNumbersAndControlsBesideTheirCells() throws {
    var records = [
      Self.record(["full"], .all, score: 0.85, interval: [0.82, 0.88], trainable: 1000),
      Self.record(["classifier"], .all, score: 0.60, interval: [0.55, 0.65], trainable: 10),
      Self.record(["random"], .all, score: 0.62, interval: [0.58, 0.66], trainable: 26, randomCount: 16),
    ]
    // Module-wise: every module but key is a ticket (key is within 3 points but its interval reaches the head).
    for (m, score, low) in [("query", 0.84, 0.81), ("key", 0.83, 0.59), ("value", 0.85, 0.82), ("attn_out", 0.84, 0.80),
                            ("intermediate", 0.85, 0.82), ("output", 0.84, 0.81), ("layernorm", 0.83, 0.80)] {
      records.append(Self.record([TrainableModule(rawValue: m)!], .all, score: score, interval: [low, score + 0.03], trainable: 100))
    }
    // Layer-wise, two layers: score rises with the module's magnitude; LayerNorms beat their random control.
    let sel = LearningRateSelection(candidates: [.init(learningRate: 1e-3, dev: ["accuracy": 0.7], steps: 2),
                                                 .init(learningRate: 5e-3, dev: ["accuracy": 0.75], steps: 2)],
                                    chosen: 5e-3, rungSteps: 2)
    for (i, m) in Preset.paperModules.enumerated() {
      for l in 0..<2 {
        let mag = 0.05 + 0.1 * Double(i) + 0.01 * Double(l)
        records.append(Self.record([m], .indices([l]), score: 0.65 + 0.02 * Double(i) + 0.005 * Double(l),
                                   interval: [0.62 + 0.02 * Double(i), 0.7 + 0.02 * Double(i)],
                                   trainable: m == "layernorm" ? 26 : 100, meanAbs: mag, selection: sel))
      }
      records.append(Self.record(["random"], .indices([0]), score: 0.63, interval: [0.59, 0.67], trainable: 26, randomCount: 16))
    }
    let results = try StudyResults(records: records)
    let claims = ReportFindings.claims(results)
    XCTAssertEqual(claims.count, 3, claims.joined(separator: "\n"))
    XCTAssertTrue(claims[0].contains("claim 1") && claims[0].contains("**partly supported**, 6 of 7 modules"), claims[0])
    XCTAssertTrue(claims[0].contains("key 83.0 [59.0, 86.0] not"), claims[0])
    XCTAssertTrue(claims[1].contains("claim 2") && claims[1].contains("**supported**, 2 of 2 layers"), claims[1])
    XCTAssertTrue(claims[1].contains("layer 0 77.0 [74.0, 82.0] vs random of that layer 63.0 [59.0, 67.0] (+14.0)"), claims[1])
    XCTAssertTrue(claims[1].contains("from the whole encoder: 62.0 [58.0, 66.0]"), claims[1])
    XCTAssertTrue(claims[2].contains("claim 3") && claims[2].contains("**supported**") && claims[2].contains("ρ = 1.00")
                  && claims[2].contains("over 14 (module, layer) cells"), claims[2])
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("claims-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("journal.jsonl")
    do { let j = try Journal(url: url); for r in records { try j.append(r) } }
    let md = try StudyReport(journals: [url]).markdown()
    XCTAssertFalse(md.contains("(n=1)"), "every single-seed cell here has its interval")
    XCTAssertTrue(md.contains("**0.005** of {0.001: 70.0 at step 2; 0.005: 75.0 at step 2}"), md)
    // The layer-wise table sets the random control right under the LayerNorm row.
    let rows = md.split(separator: "\n").filter { $0.hasPrefix("| layernorm |") || $0.hasPrefix("| random(16) |") }
    XCTAssertEqual(rows.count, 4, md)
  }
}

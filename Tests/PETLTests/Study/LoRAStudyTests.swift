import Foundation
import XCTest
@testable import PETLModel
@testable import PETLTraining
@testable import PETLStudy

/// The `lora` preset's design and the report's questions on where LoRA should go.
final class LoRAStudyTests: XCTestCase {
  /// MiniLM's widths (all-MiniLM-L6-v2): hidden 384, 6 layers, intermediate 1536.
  private let config = EncoderConfig(hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12, intermediateSize: 1536,
                                     maxPositionEmbeddings: 512, typeVocabSize: 2, vocabSize: 30522, layerNormEps: 1e-12,
                                     hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1)

  func testMatchedRanksGiveEqualCounts() {
    // query+value: 4H per layer and rank; intermediate+output: 2(H+I). With I = 4H: ranks 5 and 2.
    XCTAssertTrue(Preset.matchedRanks(hidden: 384, intermediate: 1536) == (5, 2))
    XCTAssertTrue(Preset.matchedRanks(hidden: 768, intermediate: 3072) == (5, 2))
    // No small common multiple: MLP rank 2 and the nearest attention rank (2·2·69/(4·32) = 2.2).
    XCTAssertTrue(Preset.matchedRanks(hidden: 32, intermediate: 37) == (2, 2))
  }

  func testLoRAPresetPlansModuleAndLoRACellsAtMatchedCounts() throws {
    let planner = StudyPlanner(config: config, modelDirectory: URL(fileURLWithPath: "/nonexistent/all-MiniLM-L6-v2"),
                               dataDirectory: URL(fileURLWithPath: "/nonexistent"))
    var request = StudyRequest()
    request.preset = .lora
    let plan = try planner.plan(request) { $0 }
    // Module-wise: full, head, layernorm, random(9216) and the six kinds; layer-wise: six kinds x 6
    // layers; LoRA: six kinds module-wise and x 6 layers at rank 8, query+value at ranks 1 and 5,
    // intermediate+output at rank 2. 91 sets, three seeds each.
    XCTAssertEqual(plan.cells.count, 91 * 3)
    let lora = plan.cells.filter { $0.options.method == .lora }
    XCTAssertEqual(lora.count, 45 * 3)
    XCTAssertTrue(lora.allSatisfy { $0.options.loraAlpha == Double($0.options.loraRank) }, "alpha = rank")
    XCTAssertEqual(Set(lora.map(\.options.loraRank)), [1, 2, 5, 8])
    let dims = ModelDims(config: config, numLabels: 2)
    func count(_ c: CellSpec) throws -> Int { try c.trainableSet(dims: dims).count }
    func cell(_ modules: [TrainableModule], rank: Int?) throws -> CellSpec {
      try XCTUnwrap(plan.cells.first { $0.modules == modules && $0.layers == .all && $0.options.seed == 1
        && ($0.options.method == .lora ? $0.options.loraRank : nil) == rank })
    }
    let head = try count(cell([.classifier], rank: nil))
    XCTAssertEqual(try count(cell([.query, .value], rank: 1)) - head, 4 * 384 * 6, "all LayerNorms' count")
    XCTAssertEqual(try count(cell([.query, .value], rank: 1)), try count(cell([.layernorm], rank: nil)))
    XCTAssertEqual(try count(cell([.query, .value], rank: 5)), try count(cell([.intermediate, .output], rank: 2)))
    XCTAssertEqual(try count(cell([.query], rank: 8)) - head, 6 * 8 * (384 + 384))
    // Module cells keep the quick preset's identity: the same hash as the quick preset's cell.
    var quick = StudyRequest(); quick.preset = .quick
    let quickPlan = try planner.plan(quick) { $0 }
    let q = try cell([.query], rank: nil)
    XCTAssertTrue(quickPlan.cells.contains { $0.hash == q.hash }, "module cells are the quick preset's cells")
    // Seeds 2 and 3 of a LoRA set reuse seed 1's rate, as module cells do.
    XCTAssertTrue(lora.filter { $0.options.seed != 1 }.allSatisfy { $0.options.rateFromSeed == 1 })
  }

  /// The quick preset's rule for small GLUE tasks: all examples, batches of 16, 128 tokens, at least
  /// `quickSmallTaskMinSteps` updates; the default task keeps its own budget, and the user's flags win.
  func testQuickPresetGivesSmallTasksTheirOwnBudget() throws {
    let planner = StudyPlanner(config: config, modelDirectory: URL(fileURLWithPath: "/nonexistent/all-MiniLM-L6-v2"),
                               dataDirectory: URL(fileURLWithPath: "/nonexistent"))
    var request = StudyRequest()
    request.tasks = ["rt-vader", "mrpc"]
    let plan = try planner.plan(request) { $0 }
    let mrpc = plan.cells.filter { $0.task == "mrpc" }, vader = plan.cells.filter { $0.task == "rt-vader" }
    XCTAssertEqual(mrpc.count, 180)
    XCTAssertEqual(vader.count, 180)
    for c in mrpc {
      XCTAssertNil(c.options.maxTrain); XCTAssertEqual(c.options.batchSize, 16)
      XCTAssertEqual(c.options.maxLength, 128); XCTAssertEqual(c.options.minSteps, Preset.quickSmallTaskMinSteps)
      XCTAssertEqual(c.options.restarts, 2)
    }
    for c in vader {
      XCTAssertEqual(c.options.maxTrain, 2000); XCTAssertEqual(c.options.batchSize, 32)
      XCTAssertEqual(c.options.maxLength, 64); XCTAssertEqual(c.options.minSteps, Preset.quickMinSteps)
    }
    // The default study's cells are unchanged by the rule (same identity as a plan of rt-vader alone).
    let alone = try planner.plan(StudyRequest()) { $0 }
    XCTAssertEqual(Set(alone.cells.map(\.hash)), Set(vader.map(\.hash)))
    // A flag wins over the rule; a grid of the user's own sets has no least number of updates.
    let flagged = try planner.plan(request) { var o = $0; o.batchSize = 32; return o }
    XCTAssertTrue(flagged.cells.allSatisfy { $0.options.batchSize == 32 })
    var own = StudyRequest(); own.tasks = ["mrpc"]; own.modules = [[.layernorm]]
    let ownPlan = try planner.plan(own) { $0 }
    XCTAssertTrue(ownPlan.cells.allSatisfy { $0.options.minSteps == nil && $0.options.restarts == 0 && $0.options.batchSize == 16 })
  }

  /// Synthetic LoRA records whose answers are known: every LoRA module within a point of full (a
  /// ticket), LoRA on a module 1 point under the module in full (matches), attention-only 4 points
  /// above MLP-only at the same count, LoRA at the LayerNorms' count 5 points under them.
  func testReportAnswersWhereLoRAShouldGo() throws {
    var records: [JournalRecord] = []
    func add(_ m: [TrainableModule], _ l: LayerSelection = .all, lora rank: Int? = nil, at accuracy: Double, trainable: Int, k: Int? = nil) {
      for seed in UInt64(1)...3 {
        var r = ClaimsTests.seeded(m, l, seed: seed, accuracy: accuracy + 0.002 * Double(seed), n: 2000, trainable: trainable, randomCount: k)
        if let rank { r.spec.options.method = .lora; r.spec.options.loraRank = rank; r.spec.options.loraAlpha = Double(rank) }
        r.specHash = r.spec.hash
        records.append(r)
      }
    }
    add([.full], at: 0.85, trainable: 1_000_000)
    add([.classifier], at: 0.60, trainable: 10)
    add([.layernorm], at: 0.84, trainable: 110)
    add([.random], at: 0.70, trainable: 110, k: 100)
    for m in Preset.loraModules {
      add([m], at: 0.85, trainable: 100_010)
      add([m], lora: 8, at: 0.84, trainable: 1_010)
      add([m], .indices([0]), lora: 8, at: 0.80, trainable: 170)
      add([m], .indices([1]), lora: 8, at: 0.83, trainable: 170)
    }
    add([.query, .value], lora: 1, at: 0.79, trainable: 110)
    add([.query, .value], lora: 5, at: 0.84, trainable: 510)
    add([.intermediate, .output], lora: 2, at: 0.80, trainable: 510)
    let results = try StudyResults(records: records)
    let lines = ReportClaims.loraClaims(results)
    XCTAssertEqual(lines.count, 4, lines.joined(separator: "\n"))
    XCTAssertTrue(lines[0].contains("LoRA 1") && lines[0].contains("**supported**, 6 of 6 modules tickets"), lines[0])
    XCTAssertTrue(lines[0].contains("Layer-wise: ") && lines[0].contains("query layer 1 83."), lines[0])
    XCTAssertTrue(lines[1].contains("LoRA 2") && lines[1].contains("**supported**, 6 of 6 modules")
                  && lines[1].contains("with 1,000 of its 100,000 scalars"), lines[1])
    XCTAssertTrue(lines[2].contains("LoRA 3") && lines[2].contains("**supported**") && lines[2].contains("500 scalars each")
                  && lines[2].contains("lora(r=5):query+value"), lines[2])
    XCTAssertTrue(lines[3].contains("LoRA 4") && lines[3].contains("**contradicted**") && lines[3].contains("vs as many random scalars"), lines[3])
    // The paper's claims stay on the module cells alone.
    let claims = ReportClaims.claims(results)
    XCTAssertTrue(claims[0].contains("7 modules") || claims[0].contains("of 7"), claims[0])
    XCTAssertFalse(claims.joined().contains("lora("), "LoRA cells never enter the paper's claims")
    // Tables and heatmap rows name the LoRA sets apart from the module cells.
    XCTAssertTrue(results.moduleWiseSets(task: "rt-vader").contains("lora(r=8):query"))
    XCTAssertTrue(results.layerWiseAxes(task: "rt-vader").sets.contains("lora(r=8):attn_out"))
    XCTAssertEqual(results.best(CellGroup(task: "rt-vader", set: "query", layers: .all))?.mean ?? 0, 85.4, accuracy: 1e-9)
  }
}

import XCTest
@testable import PETLModel
@testable import PETLData
@testable import PETLTraining
@testable import PETLStudy

final class GridPlanTests: XCTestCase {
  private func plan(tasks: [String] = ["rte"], modules: [String], layers: GridLayers = .all,
                    seeds: [UInt64] = [1], lrs: [Double]? = nil, randomCount: Int? = nil) throws -> GridPlan {
    try GridPlan(tasks: tasks, modules: modules.map { try TrainableModule.parseSet($0) }, layers: layers, seeds: seeds, learningRates: lrs,
                 base: TrainOptions(), model: "all-MiniLM-L6-v2", numLayers: 6, randomCount: randomCount)
  }

  func testExpandsInStableOrderTaskModuleLayerSeedRate() throws {
    let p = try plan(tasks: ["rte", "mrpc"], modules: ["query", "layernorm"], layers: .list([1, 3]),
                     seeds: [1, 2], lrs: [1e-3, 1e-4])
    XCTAssertEqual(p.cells.count, 2 * 2 * 2 * 2 * 2)
    XCTAssertEqual(p.cells[0].label, "rte query@1 seed1 lr1e-03")
    XCTAssertEqual(p.cells[1].label, "rte query@1 seed1 lr1e-04")
    XCTAssertEqual(p.cells[2].label, "rte query@1 seed2 lr1e-03")
    XCTAssertEqual(p.cells[4].label, "rte query@3 seed1 lr1e-03")
    XCTAssertEqual(p.cells[8].label, "rte layernorm@1 seed1 lr1e-03")
    XCTAssertEqual(p.cells[16].task, "mrpc")
    XCTAssertEqual(Set(p.cells.map(\.hash)).count, p.cells.count, "every cell is distinct")
    let again = try plan(tasks: ["rte", "mrpc"], modules: ["query", "layernorm"], layers: .list([1, 3]),
                         seeds: [1, 2], lrs: [1e-3, 1e-4])
    XCTAssertEqual(again.cells.map(\.hash), p.cells.map(\.hash), "same flags, same cells, same order")
  }

  func testEachMakesOneCellPerLayerAndNonLayerWiseModulesGetAll() throws {
    let p = try plan(modules: ["value", "bias", "classifier"], layers: .each)
    XCTAssertEqual(p.cells.filter { $0.modules == ["value"] }.map(\.layers), (0..<6).map { .indices([$0]) })
    XCTAssertEqual(p.cells.filter { $0.modules == ["bias"] }.map(\.layers), [.all])
    XCTAssertEqual(p.cells.filter { $0.modules == ["classifier"] }.map(\.layers), [.all])
    XCTAssertEqual(p.notes.count, 2)
    XCTAssertTrue(p.notes[0].contains("bias is not layer-wise"), p.notes[0])
  }

  func testDefaultLearningRatesByFamilyAndCombinedSets() throws {
    XCTAssertEqual(defaultLearningRate(modules: ["full"]), 5e-5)
    XCTAssertEqual(defaultLearningRate(modules: ["embeddings"]), 5e-5)
    for m: TrainableModule in [.query, .key, .value, .attnOut, .intermediate, .output, .pooler] {
      XCTAssertEqual(defaultLearningRate(modules: [m]), 5e-4, "\(m)")
    }
    for m: TrainableModule in [.layernorm, .lnAttn, .lnOut, .bias, .classifier, .random] {
      XCTAssertEqual(defaultLearningRate(modules: [m]), 5e-3, "\(m)")
    }
    XCTAssertEqual(defaultLearningRate(modules: ["layernorm", "query"]), 5e-4)
    let p = try plan(modules: ["query+value", "ln_out"])
    XCTAssertEqual(p.cells.map(\.modules), [["query", "value"], ["ln_out"]])
    XCTAssertEqual(p.cells.map(\.options.learningRate), [5e-4, 5e-3])
  }

  func testRandomNeedsACountAndCarriesIt() throws {
    XCTAssertThrowsError(try plan(modules: ["random"])) {
      XCTAssertTrue("\($0)".contains("--random-count"), "\($0)")
    }
    let p = try plan(modules: ["random", "query"], randomCount: 1000)
    XCTAssertEqual(p.cells.map(\.randomCount), [1000, nil])
  }

  func testErrorsNameTheFlagAndTheValue() throws {
    XCTAssertThrowsError(try plan(modules: ["querry"])) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("'querry'") && text.contains("known:") && text.contains("attn_out"), text)
    }
    XCTAssertThrowsError(try plan(modules: [])) { XCTAssertTrue("\($0)".contains("--modules"), "\($0)") }
    XCTAssertThrowsError(try plan(tasks: [], modules: ["query"])) { XCTAssertTrue("\($0)".contains("--tasks"), "\($0)") }
    XCTAssertThrowsError(try plan(modules: ["query"], seeds: [])) { XCTAssertTrue("\($0)".contains("--seeds"), "\($0)") }
    XCTAssertThrowsError(try plan(modules: ["query"], lrs: [])) { XCTAssertTrue("\($0)".contains("--lrs"), "\($0)") }
    XCTAssertThrowsError(try plan(modules: ["query"], layers: .list([6]))) {
      XCTAssertTrue("\($0)".contains("layer 6 does not exist"), "\($0)")
    }
    XCTAssertThrowsError(try plan(modules: ["query"], seeds: [1, 1])) {
      XCTAssertTrue("\($0)".contains("listed twice"), "\($0)")
    }
  }

  func testParsesGridLayers() throws {
    XCTAssertEqual(try GridLayers.parse("all"), .all)
    XCTAssertEqual(try GridLayers.parse("each"), .each)
    XCTAssertEqual(try GridLayers.parse("4,3"), .list([3, 4]))
    XCTAssertThrowsError(try GridLayers.parse("every"))
  }

  func testCostModelOrdersByBackwardDepthAndLearnsTwoRates() throws {
    var cost = CostModel(layout: TestSupport.miniLMLayout())
    let p = try plan(modules: ["query", "classifier", "full"], layers: .list([0, 5]))
    let q5 = p.cells.first { $0.modules == ["query"] && $0.layers == .indices([5]) }!
    let q0 = p.cells.first { $0.modules == ["query"] && $0.layers == .indices([0]) }!
    let head = p.cells.first { $0.modules == ["classifier"] }!
    let full = p.cells.first { $0.modules == ["full"] }!
    let E = 2_490.0 * 3  // RTE's training set, 3 epochs
    XCTAssertEqual(cost.units(q0), (6 + 6) * E)
    XCTAssertEqual(cost.units(q5), (6 + 1) * E)
    XCTAssertEqual(cost.units(head), 6 * E)
    XCTAssertEqual(cost.units(full), (6 + 12) * E, "full also computes every weight gradient")
    XCTAssertEqual(cost.costliestFirst([head, q5, q0, full]) { $0 }.map(\.hash), [full, q0, q5, head].map(\.hash))
    var capped = q0; capped.options.maxSteps = 10; capped.options.batchSize = 8
    XCTAssertEqual(cost.units(capped), 12 * 80)
    var cachedQ5 = q5; cachedQ5.options.prefixCache = true
    XCTAssertEqual(cost.terms(cachedQ5).forward, 2_490 * (6 + 2 * 1), "later epochs start at layer 5")
    XCTAssertNil(cost.estimatedSeconds([q0], workers: 1))

    // One observation: one shared rate.
    cost.observe(q5, seconds: cost.units(q5) * 0.001)
    XCTAssertEqual(cost.estimatedSeconds([q0, q0], workers: 2)!, cost.units(q0) * 0.001, accuracy: 1e-6)
    // Cells whose time is 1 ms per forward unit and 3 ms per backward unit: both rates are recovered,
    // and the order now weighs backward depth three times.
    var fit = CostModel(layout: TestSupport.miniLMLayout())
    for c in [full, head, q5] {
      let t = fit.terms(c)
      fit.observe(c, seconds: 0.001 * t.forward + 0.003 * t.backward)
    }
    XCTAssertEqual(fit.rates!.forward, 0.001, accuracy: 1e-9)
    XCTAssertEqual(fit.rates!.backward, 0.003, accuracy: 1e-9)
    XCTAssertEqual(fit.estimatedSeconds(q0)!, (0.001 * 6 + 0.003 * 6) * E, accuracy: 1e-6)
    XCTAssertEqual(fit.units(q0), (6 + 3 * 6) * E, accuracy: 1e-6)
  }
}

final class CostModelTests: XCTestCase {
  let layout = TestSupport.miniLMLayout()

  /// The cost model and the dispatcher's cache affinity read the same plan the engine trains with.
  func testCostModelReadsTheEnginesPlan() throws {
    let cost = CostModel(layout: layout)
    let cases: [([TrainableModule], LayerSelection, Int?)] = [
      (["bias"], .all, nil), (["classifier"], .all, nil), (["pooler"], .all, nil), (["query"], .indices([4]), nil),
      (["layernorm"], .all, nil), (["random"], .indices([2]), 100), (["embeddings"], .all, nil)]
    for (modules, layers, k) in cases {
      let spec = CellSpec(task: "rte", modules: modules, layers: layers, randomCount: k, model: "m", options: TrainOptions())
      let set = try TrainableSet(modules: modules, layers: layers, layout: layout, randomCount: k, seed: spec.options.seed)
      XCTAssertEqual(cost.reach(spec).lowest, set.plan.lowestLayer, "\(modules)@\(layers)")
      XCTAssertEqual(cost.reach(spec).frozenPrefix, set.plan.frozenPrefix, "\(modules)@\(layers)")
    }
  }
}

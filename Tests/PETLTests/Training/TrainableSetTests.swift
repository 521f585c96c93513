import XCTest
@testable import PETLModel
@testable import PETLTraining

/// Which HF tensors each trainable set selects, by name, on the real layout (6 layers), and that a
/// training step leaves every frozen value bit-identical.
final class TrainableSetTests: XCTestCase {
  let layout = ParameterLayout(dims: ModelDims(vocabSize: 30522, hidden: 384, layers: 6, heads: 12, intermediate: 1536,
                                               maxPositions: 512, typeVocab: 2, numLabels: 2))
  let head = ["classifier.weight", "classifier.bias"]

  func names(_ modules: [TrainableModule], _ layers: LayerSelection) throws -> [String] {
    try TrainableSet(modules: modules, layers: layers, layout: layout).plan.trainableNames
  }

  func wb(_ path: String, _ layers: [Int]) -> [String] {
    layers.flatMap { ["encoder.layer.\($0).\(path).weight", "encoder.layer.\($0).\(path).bias"] }
  }

  func testEveryModuleTypeAllLayersAndOneLayer() throws {
    let paths = ["query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
                 "attn_out": "attention.output.dense", "intermediate": "intermediate.dense", "output": "output.dense",
                 "ln_attn": "attention.output.LayerNorm", "ln_out": "output.LayerNorm"]
    for (name, path) in paths {
      let module = TrainableModule(rawValue: name)!
      XCTAssertEqual(Set(try names([module], .all)), Set(wb(path, Array(0..<6)) + head), name)
      XCTAssertEqual(Set(try names([module], .indices([3]))), Set(wb(path, [3]) + head), name)
      XCTAssertEqual(Set(try names([module], .indices([0, 5]))), Set(wb(path, [0, 5]) + head), name)
    }
    XCTAssertEqual(Set(try names(["layernorm"], .indices([2]))),
                   Set(wb("attention.output.LayerNorm", [2]) + wb("output.LayerNorm", [2]) + head))
  }

  func testBaselinesAndPooler() throws {
    XCTAssertEqual(try names(["classifier"], .all), head)
    XCTAssertEqual(try names(["pooler"], .all), ["pooler.dense.weight", "pooler.dense.bias"] + head)
    XCTAssertEqual(try names(["full"], .all).count, layout.slots.count)
    XCTAssertEqual(Set(try names(["embeddings"], .all)), Set(["embeddings.word_embeddings.weight",
      "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight",
      "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"] + head))
    let bitfit = try names(["bias"], .all)
    XCTAssertTrue(bitfit.allSatisfy { $0.hasSuffix(".bias") || $0 == "classifier.weight" })
    XCTAssertEqual(bitfit.count, 6 * 8 + 1 + 2, "8 biases per layer, the embeddings LayerNorm bias, the head")
    XCTAssertFalse(bitfit.contains("pooler.dense.bias"), "the pooler trains only when chosen")
    XCTAssertFalse(try TrainableSet(modules: ["layernorm"], layers: .all, layout: layout).plan.includesPooler)
  }

  func testSegmentsAreContiguousRangesOfTheSlab() throws {
    // One module type in all layers is ONE contiguous range (weights and biases interleaved per layer).
    let q = try TrainableSet(modules: ["query"], layers: .all, layout: layout)
    let r = layout.range(of: .query)
    XCTAssertEqual(q.plan.segments.first!.paramOffset, r.lowerBound)
    XCTAssertEqual(q.plan.segments.filter { $0.paramOffset < r.upperBound }.reduce(0) { $0 + $1.count }, r.count)
    // gradient offsets are dense: the slab is exactly the trainable parameters
    var next = 0
    for s in q.plan.segments { XCTAssertEqual(s.gradOffset, next); next += s.count }
    XCTAssertEqual(next, q.count)
  }

  func testErrorsNameTheFlag() {
    XCTAssertThrowsError(try TrainableModule(parsing: "quary")) {
      XCTAssertTrue("\($0)".contains("--modules: unknown trainable set 'quary'"), "\($0)")
    }
    XCTAssertThrowsError(try names(["query"], .indices([6]))) { XCTAssertTrue("\($0)".contains("layer 6 does not exist")) }
    XCTAssertThrowsError(try names(["random"], .all)) { XCTAssertTrue("\($0)".contains("--random-count")) }
  }

  /// After training steps, every frozen parameter is bit-identical and every trainable one moved.
  func testFrozenValuesNeverChange() throws {
    for (mods, layers) in [(["query"], .indices([1])), (["layernorm"], .all), (["bias"], .all)] as [([TrainableModule], LayerSelection)] {
      let m = TestSupport.tinyModel()
      let before = m.snapshot()
      let set = try TrainableSet(modules: mods, layers: layers, layout: m.layout)
      let step = TrainingStep(model: m, trainable: set, optimizer: .adamw, weightDecay: 0.01, maxGradNorm: 1)
      for s in 0..<2 { step.run(TestSupport.tinyBatch(), lr: 1e-2, dropoutKey: UInt64(s)) }
      let after = m.snapshot()
      for (i, slot) in m.layout.slots.enumerated() {
        let changed = slot.range.filter { before[$0].bitPattern != after[$0].bitPattern }.count
        if set.plan.targets[i] == nil {
          XCTAssertEqual(changed, 0, "\(mods): frozen \(slot.name) changed")
        } else if slot.role != .table {
          XCTAssertGreaterThan(changed, 0, "\(mods): trainable \(slot.name) did not move")
        }
      }
    }
  }
}

/// What the engine sees of a set: how far backward goes in each layer, and the prefix a cache holds.
final class GradientPlanTests: XCTestCase {
  let layout = TestSupport.miniLMLayout()

  func plan(_ modules: [TrainableModule], _ layers: LayerSelection) throws -> GradientPlan {
    try TrainableSet(modules: modules, layers: layers, layout: layout).plan
  }

  /// Outside BERT there is no pooler: the head's own dense layer is part of the head and trains in
  /// every set, and `pooler` is an error naming the family.
  func testHeadOfTheOtherFamilies() throws {
    for family in [EncoderFamily.roberta, .electra, .distilbert] {
      let layout = ParameterLayout(dims: TestSupport.tinyDims(family))
      let head = try TrainableSet(modules: [.classifier], layers: .all, layout: layout)
      let (dense, out) = family.headPaths
      XCTAssertEqual(head.plan.trainableNames, [dense + ".weight", dense + ".bias", out + ".weight", out + ".bias"])
      XCTAssertEqual(head.plan.reach, .head)
      XCTAssertFalse(head.plan.includesPooler)
      XCTAssertTrue(layout.range(of: .pooler).isEmpty)
      XCTAssertThrowsError(try TrainableSet(modules: [.pooler], layers: .all, layout: layout)) {
        XCTAssertEqual("\($0)", "--modules pooler: a \(family.rawValue) model has no pooler (its head's dense layer trains with the head)")
      }
    }
  }

  func testReachAndFrozenPrefix() throws {
    let head = try plan(["classifier"], .all)
    XCTAssertEqual(head.reach, .head)
    XCTAssertEqual(head.frozenPrefix, 6, "the head alone caches the pooled outputs")
    let pooler = try plan(["pooler"], .all)
    XCTAssertEqual(pooler.reach, .pooler)
    XCTAssertNil(pooler.frozenPrefix, "a trainable pooler changes what a cache would hold")
    XCTAssertEqual(try plan(["bias"], .all).lowestLayer, -1, "BitFit trains the embeddings LayerNorm bias")
    XCTAssertEqual(try plan(["bias"], .indices([2])).lowestLayer, 2)
    XCTAssertNil(try plan(["query"], .indices([0])).frozenPrefix)
    let ln3 = try plan(["layernorm"], .indices([3]))
    XCTAssertEqual(ln3.frozenPrefix, 3)
    XCTAssertEqual(ln3.layerReach[3], .lnAttn)
    XCTAssertEqual(Array(ln3.layerReach[4...]), [.input, .input])
    XCTAssertEqual(try plan(["output"], .indices([5])).layerReach[5], .output)
    XCTAssertEqual(try plan(["ln_out"], .indices([5])).layerReach[5], .lnOut)
    XCTAssertEqual(try plan(["value", "intermediate"], .indices([5])).layerReach[5], .projections)
    XCTAssertEqual(try plan(["full"], .all).reach, .embeddings)
  }
}

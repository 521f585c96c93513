import Foundation
import XCTest
@testable import PETLKernels
@testable import PETLModel
@testable import PETLTraining
import PETLSupport

/// LoRA's engine without a reference stack: finite differences for A and B (dropout on and off, every
/// family, the [CLS]-only last layer), module cells untouched by adapter slots, the cell identity, the
/// counts and errors the study relies on.
final class LoRATests: XCTestCase {
  let dropoutKey: UInt64 = 41

  /// A tiny model of `family` with adapters on `kinds` in `layers`, A as PEFT draws it and B nonzero.
  func loraModel(_ family: EncoderFamily, kinds: [ModuleKind], layers: [Int], rank: Int = 3, alpha: Double = 6,
                 dropout: Double = 0) -> EncoderModel {
    let base = TestSupport.tinyModel(dims: TestSupport.tinyDims(family))
    let m = base.withLoRA(LoRASpec(rank: rank, alpha: alpha, dropout: dropout, kinds: kinds, layers: layers), seed: 3)
    var rng = SeededGenerator(seed: 17)
    for s in m.layout.slots where s.role == .loraB { for i in 0..<s.count { m.pointer(s)[i] = 0.3 * rng.normal() } }
    return m
  }

  func lossAt(_ m: EncoderModel, _ ws: Workspace, _ batch: Batch, training: Bool) -> Double {
    m.forward(batch, ws: ws, training: training, dropoutKey: dropoutKey)
    return m.loss(batch, ws: ws)
  }

  /// Directional derivatives of every A and B (a random direction per tensor) against central
  /// differences in fp32, as GradientCheckTests does for the module weights.
  func checkAdapters(_ m: EncoderModel, _ set: TrainableSet, training: Bool, label: String) {
    let batch = TestSupport.tinyBatch(dims: m.dims)
    let ws = Workspace(dims: m.dims)
    var g = [Float](repeating: 0, count: set.count)
    let pass = m.forward(batch, ws: ws, training: training, dropoutKey: dropoutKey)
    m.loss(batch, ws: ws)
    g.withUnsafeMutableBufferPointer {
      m.backward(batch, ws: ws, plan: set.plan, grads: $0.baseAddress!, after: pass, dropoutKey: dropoutKey, training: training)
    }
    var rng = SeededGenerator(seed: 5)
    var checked = 0
    for (i, s) in m.layout.slots.enumerated() where s.role.isLoRA {
      guard case .full(let go)? = set.plan.targets[i] else { continue }  // a frozen adapter
      var d = (0..<s.count).map { _ in rng.normal() }
      let norm = d.reduce(0) { $0 + $1 * $1 }.squareRoot()
      d = d.map { $0 / norm }
      var analytic = 0.0
      for j in 0..<s.count { analytic += Double(g[go + j]) * Double(d[j]) }
      let h: Float = 2e-3, p = m.pointer(s)
      let orig = Array(UnsafeBufferPointer(start: p, count: s.count))
      for j in 0..<s.count { p[j] = orig[j] + h * d[j] }
      let lp = lossAt(m, ws, batch, training: training)
      for j in 0..<s.count { p[j] = orig[j] - h * d[j] }
      let lm = lossAt(m, ws, batch, training: training)
      for j in 0..<s.count { p[j] = orig[j] }
      let numeric = (lp - lm) / (2 * Double(h))
      XCTAssertGreaterThan(abs(analytic), 1e-4, "\(label): \(s.name) has no gradient to check")
      let tol = 1e-2 * max(abs(numeric), abs(analytic)) + 2e-3
      XCTAssertLessThan(abs(numeric - analytic), tol, "\(label): \(s.name) numeric \(numeric) analytic \(analytic)")
      checked += 1
    }
    XCTAssertEqual(checked, set.plan.trainableNames.filter { $0.contains(".lora_") }.count, label)
  }

  func testFiniteDifferencesEveryKindEveryFamily() throws {
    for family in EncoderFamily.allCases {
      // all six kinds in the middle layer and the last ([CLS]-only rows for query, attn_out, FFN)
      let kinds = LoRASpec.kinds
      for (layers, training, dropout) in [([1, 2], false, 0.0), ([1, 2], true, 0.0), ([2], true, 0.3)] {
        let m = loraModel(family, kinds: kinds, layers: layers, dropout: dropout)
        let set = try TrainableSet(modules: kinds.map { TrainableModule(rawValue: $0.rawValue)! }, layers: .indices(layers),
                                   layout: m.layout, method: .lora)
        checkAdapters(m, set, training: training, label: "\(family) layers \(layers) training \(training) dropout \(dropout)")
      }
    }
  }

  /// The input gradient through adapters: layer 0's adapters train while layers 1 and 2 carry frozen
  /// ones, so layer 0's gradient is right only if each frozen adapter adds its dinp term.
  func testAdapterInputGradientFlowsBelow() throws {
    let m = loraModel(.bert, kinds: [.query, .output], layers: [0, 1, 2])
    let set = try TrainableSet(modules: [.query, .output], layers: .indices([0]), layout: m.layout, method: .lora)
    // the layers above carry frozen adapters: their dinp terms matter for layer 0's gradient
    checkAdapters(m, set, training: true, label: "frozen adapters above")
  }

  /// A LoRA cell whose adapters sit in layer 2 trains through the frozen-prefix cache (layers 0 and 1
  /// served from it after the first pass) to the parameters it reaches without it (dropout off).
  func testPrefixCacheServesLoRACells() throws {
    func train(cache: Bool) throws -> ([Float], PrefixCache?) {
      let m = loraModel(.roberta, kinds: [.value, .intermediate], layers: [2])
      m.hiddenDropout = 0; m.attentionDropout = 0; m.classifierDropout = 0
      let set = try TrainableSet(modules: [.value, .intermediate], layers: .indices([2]), layout: m.layout, method: .lora)
      XCTAssertEqual(set.plan.frozenPrefix, 2)
      let step = TrainingStep(model: m, trainable: set, optimizer: .adamw, weightDecay: 0.01, maxGradNorm: 1)
      if cache { step.prefixCache = PrefixCache(layer: 2, hidden: m.dims.hidden) }
      let batch = TestSupport.tinyBatch(dims: m.dims)
      for epoch in 0..<3 { step.run(batch, lr: 1e-2, dropoutKey: UInt64(epoch)) }
      return (m.snapshot(), step.prefixCache)
    }
    let (plain, _) = try train(cache: false)
    let (cached, cache) = try train(cache: true)
    XCTAssertEqual(cache?.misses, 1)
    XCTAssertEqual(cache?.hits, 2)
    XCTAssertLessThan(zip(plain, cached).map { abs($0 - $1) }.max()!, 1e-5)
  }

  /// Adapter slots never change a module cell's plan, ranges or parameter counts.
  func testModuleCellsIgnoreAdapterSlots() throws {
    for family in EncoderFamily.allCases {
      let dims = TestSupport.tinyDims(family)
      let plain = ParameterLayout(dims: dims)
      let lora = ParameterLayout(dims: dims, lora: LoRASpec(rank: 4, alpha: 8, dropout: 0, kinds: LoRASpec.kinds, layers: [0, 1, 2]))
      XCTAssertEqual(lora.baseCount, plain.count)
      XCTAssertGreaterThan(lora.count, plain.count)
      for m in ModuleKind.allCases {
        XCTAssertEqual(plain.range(of: m), lora.range(of: m), "\(family) \(m)")
        XCTAssertEqual(plain.range(of: m, layer: 1), lora.range(of: m, layer: 1), "\(family) \(m)@1")
      }
      let sets: [([TrainableModule], LayerSelection, Int?)] = [
        ([.query], .all, nil), ([.layernorm], .indices([1]), nil), ([.full], .all, nil), ([.bias], .all, nil),
        ([.bias], .indices([2]), nil), ([.embeddings], .all, nil), ([.classifier], .all, nil), ([.random], .all, 50),
        ([.random], .indices([1]), 20), ([.query, .value], .indices([0, 2]), nil), ([.output], .all, nil),
      ] + (family.hasPooler ? [([.pooler], .all, nil)] : [])
      for (mods, layers, k) in sets {
        let a = try TrainableSet(modules: mods, layers: layers, layout: plain, randomCount: k, seed: 9)
        let b = try TrainableSet(modules: mods, layers: layers, layout: lora, randomCount: k, seed: 9)
        XCTAssertEqual(a.plan.segments, b.plan.segments, "\(family) \(mods)@\(layers)")
        XCTAssertEqual(a.count, b.count)
        XCTAssertEqual(a.plan.layerReach, b.plan.layerReach)
        XCTAssertEqual(a.plan.reach, b.plan.reach)
      }
    }
  }

  /// Cells recorded before LoRA existed keep their hashes (journal-b was written by the engine
  /// before this change, spec_hash included), and a module cell never encodes the LoRA options.
  func testModuleCellHashesUnchanged() throws {
    let url = TestSupport.fixtures.appendingPathComponent("report/journal-b.jsonl")
    var checked = 0
    for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
      let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
      guard let spec = obj["spec"], let recorded = obj["spec_hash"] as? String else { continue }
      var cell = try JSONDecoder().decode(CellSpec.self, from: JSONSerialization.data(withJSONObject: spec))
      XCTAssertEqual(cell.options.method, .module)
      XCTAssertEqual(cell.hash, recorded)
      cell.options.loraRank = 64  // ignored by a module cell
      XCTAssertEqual(cell.hash, recorded)
      XCTAssertFalse(cell.canonicalJSON.contains("lora") || cell.canonicalJSON.contains("method"))
      cell.options.method = .lora
      XCTAssertNotEqual(cell.hash, recorded)
      let back = try JSONDecoder().decode(CellSpec.self, from: Data(cell.canonicalJSON.utf8))
      XCTAssertEqual(back, cell)
      checked += 1
    }
    XCTAssertGreaterThan(checked, 3)
  }

  /// The counts the study matches against: A [R,in] and B [out,R] per adapted module, plus the head.
  func testCountsReachAndErrors() throws {
    let dims = TestSupport.tinyDims  // H 32, I 48, 3 layers
    let head = try TrainableSet(modules: [.classifier], layers: .all, layout: ParameterLayout(dims: dims)).count
    var o = TrainOptions(); o.method = .lora; o.loraRank = 4
    let spec = CellSpec(task: "rte", modules: [.query, .output], layers: .indices([1]), model: "m", options: o)
    let set = try spec.trainableSet(dims: dims)
    XCTAssertEqual(set.count, 4 * 32 + 32 * 4 + 4 * 48 + 32 * 4 + head)
    XCTAssertEqual(set.plan.reach, .layer(1))
    XCTAssertEqual(set.plan.frozenPrefix, 1)
    XCTAssertEqual(set.plan.layerReach[1], .projections)
    XCTAssertEqual(set.plan.layerReach[2], .input)
    let ffn = try CellSpec(task: "rte", modules: [.intermediate], layers: .indices([2]), model: "m", options: o).trainableSet(dims: dims)
    XCTAssertEqual(ffn.plan.layerReach[2], .intermediate)
    XCTAssertEqual(ffn.count, 4 * 32 + 48 * 4 + head)
    for bad in [TrainableModule.layernorm, .lnAttn, .lnOut, .bias, .embeddings, .pooler, .classifier, .full, .random] {
      let s = CellSpec(task: "rte", modules: [.query, bad], layers: .all, randomCount: 10, model: "m", options: o)
      XCTAssertThrowsError(try s.trainableSet(dims: dims)) { e in
        XCTAssertEqual((e as? PETLError)?.message.hasPrefix("--method lora: '\(bad.rawValue)' is not a weight-matrix module"), true, "\(e)")
      }
    }
    var bf = o; bf.precision = .bf16; bf.loraDropout = 0.1
    XCTAssertNoThrow(try bf.validate(), "LoRA runs in bf16 too, with adapter dropout")
    var r0 = o; r0.loraRank = 0
    XCTAssertThrowsError(try r0.validate()) { XCTAssertTrue("\($0)".contains("--lora-rank 0")) }
    var a0 = o; a0.loraAlpha = -1
    XCTAssertThrowsError(try a0.validate()) { XCTAssertTrue("\($0)".contains("--lora-alpha")) }
    var d1 = o; d1.loraDropout = 1
    XCTAssertThrowsError(try d1.validate()) { XCTAssertTrue("\($0)".contains("--lora-dropout")) }
  }

  /// A as PEFT draws it (U(-1/√in, 1/√in)), B zero: a fresh adapter leaves the model's outputs as
  /// they were, and merging gives back the base model's weights plus (alpha/R)·B·A.
  func testInitialisationAndMerge() throws {
    let base = TestSupport.tinyModel(dims: TestSupport.tinyDims(.distilbert))
    let spec = LoRASpec(rank: 4, alpha: 8, dropout: 0, kinds: [.value, .output], layers: [0, 2])
    let m = base.withLoRA(spec, seed: 1)
    for s in m.layout.slots where s.role.isLoRA {
      let v = UnsafeBufferPointer(start: m.pointer(s), count: s.count)
      if s.role == .loraB { XCTAssertTrue(v.allSatisfy { $0 == 0 }, s.name); continue }
      let bound = 1 / Float(s.shape[1]).squareRoot()
      XCTAssertTrue(v.allSatisfy { abs($0) <= bound }, s.name)
      let variance = v.reduce(0) { $0 + Double($1 * $1) } / Double(s.count)
      XCTAssertEqual(variance, Double(bound * bound) / 3, accuracy: 0.35 * Double(bound * bound) / 3, s.name)
    }
    let batch = TestSupport.tinyBatch(dims: m.dims)
    let ws = Workspace(dims: m.dims)
    base.forward(batch, ws: ws, training: false)
    let before = Array(ws.outputs(batch: batch.count))
    m.forward(batch, ws: ws, training: false)
    XCTAssertEqual(Array(ws.outputs(batch: batch.count)), before)
    // nonzero B: the merged base-layout model computes the adapted one's logits
    var rng = SeededGenerator(seed: 2)
    for s in m.layout.slots where s.role == .loraB { for i in 0..<s.count { m.pointer(s)[i] = 0.3 * rng.normal() } }
    m.forward(batch, ws: ws, training: false)
    let adapted = Array(ws.outputs(batch: batch.count))
    XCTAssertGreaterThan(zip(adapted, before).map { abs($0 - $1) }.max()!, 1e-3)
    let merged = m.mergedLoRA()
    XCTAssertNil(merged.layout.lora)
    merged.forward(batch, ws: Workspace(dims: merged.dims), training: false)
    let ws2 = Workspace(dims: merged.dims)
    merged.forward(batch, ws: ws2, training: false)
    XCTAssertLessThan(zip(ws2.outputs(batch: batch.count), adapted).map { abs($0 - $1) }.max()!, 1e-5)
  }
}

import XCTest
@testable import PETLKernels
@testable import PETLModel
@testable import PETLTraining

/// Finite-difference checks of the hand-written backward pass on a tiny random model, with dropout
/// on (the masks are counter-based, so the loss is a deterministic function of the parameters).
final class GradientCheckTests: XCTestCase {
  let dropoutKey: UInt64 = 99

  func lossAt(_ m: EncoderModel, _ ws: Workspace, _ batch: Batch, training: Bool = true) -> Double {
    m.forward(batch, ws: ws, training: training, dropoutKey: dropoutKey)
    return m.loss(batch, ws: ws)
  }

  func gradients(_ m: EncoderModel, _ ws: Workspace, _ batch: Batch, _ set: TrainableSet, training: Bool = true) -> [Float] {
    var g = [Float](repeating: 0, count: set.count)
    let pass = m.forward(batch, ws: ws, training: training, dropoutKey: dropoutKey)
    m.loss(batch, ws: ws)
    g.withUnsafeMutableBufferPointer {
      m.backward(batch, ws: ws, plan: set.plan, grads: $0.baseAddress!, after: pass, dropoutKey: dropoutKey, training: training)
    }
    return g
  }

  /// Directional derivative along a random direction per slot: (L(p+hd) - L(p-hd)) / 2h vs g·d.
  func checkSlots(_ m: EncoderModel, _ batch: Batch, training: Bool, file: StaticString = #filePath, line: UInt = #line) {
    let ws = Workspace(dims: m.dims)
    let full = try! TrainableSet(modules: ["full"], layers: .all, layout: m.layout)
    let g = gradients(m, ws, batch, full, training: training)
    var rng = SeededGenerator(seed: 5)
    for (i, s) in m.layout.slots.enumerated() {
      guard case .full(let go) = full.plan.targets[i] else { XCTFail("slot \(s.name) not trainable"); continue }
      // Embedding tables: only rows the batch touches matter; a random direction over the whole table
      // is still fine (untouched rows have zero gradient).
      var d = (0..<s.count).map { _ in rng.normal() }
      let norm = d.reduce(0) { $0 + $1 * $1 }.squareRoot()
      d = d.map { $0 / norm }
      var analytic = 0.0
      for j in 0..<s.count { analytic += Double(g[go + j]) * Double(d[j]) }
      let h: Float = 2e-3
      let p = m.pointer(s)
      let orig = Array(UnsafeBufferPointer(start: p, count: s.count))
      for j in 0..<s.count { p[j] = orig[j] + h * d[j] }
      let lp = lossAt(m, ws, batch, training: training)
      for j in 0..<s.count { p[j] = orig[j] - h * d[j] }
      let lm = lossAt(m, ws, batch, training: training)
      for j in 0..<s.count { p[j] = orig[j] }
      let numeric = (lp - lm) / (2 * Double(h))
      // Float loss noise is about 1e-7 relative, so |Δ| ~ 1e-4 / h absolute is the floor.
      let tol = 1e-2 * max(abs(numeric), abs(analytic)) + 2e-3
      XCTAssertLessThan(abs(numeric - analytic), tol, "\(s.name): numeric \(numeric) analytic \(analytic)", file: file, line: line)
    }
  }

  func testEveryTensorWithDropout() {
    checkSlots(TestSupport.tinyModel(), TestSupport.tinyBatch(), training: true)
  }

  func testEveryTensorEvalMode() {
    checkSlots(TestSupport.tinyModel(), TestSupport.tinyBatch(), training: false)
  }

  func testRegressionHead() {
    var dims = TestSupport.tinyDims
    dims.numLabels = 1
    checkSlots(TestSupport.tinyModel(dims: dims), TestSupport.tinyBatch(dims: dims), training: true)
  }

  /// Every family's own parts: RoBERTa's offset positions (the random ids include its padding id 1,
  /// which keeps position padding_idx) and dropped head input, ELECTRA's embedding projection
  /// (embedding 24 != hidden 32) and GELU head, DistilBERT's missing token types, undropped attention
  /// output and ReLU head.
  func testEveryTensorOfEveryFamily() {
    for family in EncoderFamily.allCases {
      let dims = TestSupport.tinyDims(family)
      if family == .roberta {
        XCTAssertTrue(TestSupport.tinyBatch(dims: dims).inputIds.contains(Int32(dims.padTokenId)), "a padding id mid-sequence")
      }
      for training in [true, false] {
        checkSlots(TestSupport.tinyModel(dims: dims), TestSupport.tinyBatch(dims: dims), training: training)
      }
    }
  }

  /// A set that starts at a middle layer gets exactly the gradients the full set computes for those
  /// tensors, and the backward stops early (so nothing else is written); in every family.
  func testSubsetsMatchFullGradients() throws {
    for family in EncoderFamily.allCases { try checkSubsets(TestSupport.tinyDims(family)) }
  }

  func checkSubsets(_ dims: ModelDims) throws {
    let m = TestSupport.tinyModel(dims: dims)
    let batch = TestSupport.tinyBatch(dims: dims)
    let ws = Workspace(dims: m.dims)
    let full = try TrainableSet(modules: ["full"], layers: .all, layout: m.layout)
    let gFull = gradients(m, ws, batch, full)
    let cases: [([TrainableModule], LayerSelection, Int?)] = [
      (["query"], .indices([1]), nil), (["key"], .indices([2]), nil), (["value"], .indices([0]), nil),
      (["attn_out"], .indices([1]), nil), (["intermediate"], .indices([1]), nil), (["output"], .indices([2]), nil),
      (["ln_attn"], .indices([1]), nil), (["ln_out"], .indices([2]), nil), (["layernorm"], .all, nil),
      (["bias"], .all, nil), (["embeddings"], .all, nil), (["classifier"], .all, nil),
      (["query", "value"], .indices([1, 2]), nil), (["random"], .all, 60),
      // enough entries of one layer that the per-entry weight gradients run on several workers
      (["random"], .indices([1]), 400),
    ] + (dims.family.hasPooler ? [(["pooler"], .all, nil)] : [])
    for (mods, layers, k) in cases {
      let set = try TrainableSet(modules: mods, layers: layers, layout: m.layout, randomCount: k, seed: 11)
      let g = gradients(m, ws, batch, set)
      XCTAssertEqual(g.count, set.count)
      for seg in set.plan.segments {
        // the same parameter's gradient under the full set
        let fullSeg = full.plan.segments.first { $0.paramOffset <= seg.paramOffset && seg.paramOffset < $0.paramOffset + $0.count }!
        for j in 0..<seg.count {
          let a = g[seg.gradOffset + j], b = gFull[fullSeg.gradOffset + seg.paramOffset - fullSeg.paramOffset + j]
          XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "\(dims.family) \(mods)@\(layers) param \(seg.paramOffset + j)")
        }
      }
    }
  }
}

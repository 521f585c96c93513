import XCTest
@testable import PETLKernels
@testable import PETLModel
@testable import PETLTraining

/// Every shortcut the engine takes gives the numbers of the long way: the multi-worker kernels
/// against one worker, the [CLS]-only last layer against the full one, layers that share one set of
/// buffers below the lowest trainable layer against stored ones, a forward that starts from a cached
/// layer input against a whole one; and the workspace's byte count against what it allocates.
final class ShortcutTests: XCTestCase {
  /// A model big enough that the parallel kernels actually split (rows x cols above their thresholds).
  static let midDims = ModelDims(vocabSize: 60, hidden: 128, layers: 2, heads: 4, intermediate: 256,
                                 maxPositions: 80, typeVocab: 2, numLabels: 3, layerNormEps: 1e-5)
  static let lengths = [70, 33, 64, 17, 50, 9, 41, 20]

  override func tearDown() { Parallel.workerOverride = nil }

  private func run(_ m: EncoderModel, _ batch: Batch, _ set: TrainableSet, depth: EncoderModel.ForwardDepth,
                   storeFrom: Int = 0) -> (logits: [Float], grads: [Float]) {
    let ws = Workspace(dims: m.dims)
    ws.storeActivations(from: storeFrom)
    let pass = m.forward(batch, ws: ws, training: true, dropoutKey: 11, depth: depth)
    m.loss(batch, ws: ws)
    var g = [Float](repeating: 0, count: set.count)
    g.withUnsafeMutableBufferPointer {
      m.backward(batch, ws: ws, plan: set.plan, grads: $0.baseAddress!, after: pass, dropoutKey: 11, training: true)
    }
    return (Array(ws.outputs(batch: batch.count)), g)
  }

  func testParallelKernelsMatchSerial() throws {
    let m = TestSupport.tinyModel(dims: Self.midDims)
    let batch = TestSupport.tinyBatch(dims: Self.midDims, lengths: Self.lengths)
    let set = try TrainableSet(modules: ["full"], layers: .all, layout: m.layout)
    for depth in [EncoderModel.ForwardDepth.logits, .logitsAllRows] {
      Parallel.workerOverride = 1
      let serial = run(m, batch, set, depth: depth)
      Parallel.workerOverride = 2
      let parallel = run(m, batch, set, depth: depth)
      XCTAssertEqual(serial.logits, parallel.logits, "\(depth)")
      var worst: Float = 0, scale: Float = 0
      for i in 0..<serial.grads.count {
        worst = max(worst, abs(serial.grads[i] - parallel.grads[i]))
        scale = max(scale, abs(serial.grads[i]))
      }
      // Elementwise kernels are bit-identical by construction; a GEMM split in two changes only the
      // summation order: float rounding of ~1e-7 of the gradient's largest entry (measured 9.5e-8 on
      // the AMD Zen kernel, where the error relative to small, cancelling entries reached 1.7e-4, so a
      // per-entry bound cannot hold). A wrong split or a lost block is O(1) of that scale.
      XCTAssertLessThan(worst / scale, 1e-6, "\(depth)")
    }
  }

  func testCLSOnlyLastLayerMatchesFullLayer() throws {
    let m = TestSupport.tinyModel(dims: Self.midDims)
    let batch = TestSupport.tinyBatch(dims: Self.midDims, lengths: Self.lengths)
    let cases: [([TrainableModule], LayerSelection)] = [
      (["full"], .all), (["query"], .indices([1])), (["key", "value"], .indices([1])),
      (["layernorm"], .indices([1])), (["intermediate"], .indices([1])), (["classifier"], .all)]
    for (mods, layers) in cases {
      let set = try TrainableSet(modules: mods, layers: layers, layout: m.layout)
      let full = run(m, batch, set, depth: .logitsAllRows)
      let cls = run(m, batch, set, depth: .logits)
      for i in 0..<full.logits.count {
        XCTAssertEqual(cls.logits[i], full.logits[i], accuracy: 1e-5 * max(1, abs(full.logits[i])), "\(mods)")
      }
      var scale: Float = 0
      for g in full.grads { scale = max(scale, abs(g)) }
      var worst: Float = 0
      for i in 0..<full.grads.count { worst = max(worst, abs(cls.grads[i] - full.grads[i])) }
      XCTAssertLessThan(worst, 1e-5 * max(scale, 1e-3), "\(mods) \(layers)")
    }
  }

  func testSharedBuffersBelowLowestTrainableLayer() throws {
    let dims = ModelDims(vocabSize: 60, hidden: 64, layers: 4, heads: 4, intermediate: 96,
                         maxPositions: 80, typeVocab: 2, numLabels: 2, layerNormEps: 1e-5)
    let m = TestSupport.tinyModel(dims: dims)
    let batch = TestSupport.tinyBatch(dims: dims, lengths: [12, 30, 7])
    for (mods, layer) in [(["query"], 2), (["layernorm"], 3), (["output"], 1)] as [([TrainableModule], Int)] {
      let set = try TrainableSet(modules: mods, layers: .indices([layer]), layout: m.layout)
      for depth in [EncoderModel.ForwardDepth.logits, .logitsAllRows] {
        let all = run(m, batch, set, depth: depth)
        let shared = run(m, batch, set, depth: depth, storeFrom: layer)
        XCTAssertEqual(all.logits, shared.logits, "\(mods) \(layer)")
        XCTAssertEqual(all.grads, shared.grads, "\(mods) \(layer)")
      }
    }
  }

  func testForwardFromCachedLayerInput() throws {
    let dims = ModelDims(vocabSize: 60, hidden: 64, layers: 4, heads: 4, intermediate: 96,
                         maxPositions: 80, typeVocab: 2, numLabels: 2, layerNormEps: 1e-5)
    let m = TestSupport.tinyModel(dims: dims)
    m.hiddenDropout = 0; m.attentionDropout = 0; m.classifierDropout = 0  // cache needs no dropout below
    let batch = TestSupport.tinyBatch(dims: dims, lengths: [12, 30, 7])
    let set = try TrainableSet(modules: ["query", "ln_out"], layers: .indices([2, 3]), layout: m.layout)
    let ref = run(m, batch, set, depth: .logits)
    // cache: eval forward to the encoder, keep x[2]
    let ws = Workspace(dims: dims)
    m.forward(batch, ws: ws, training: false, depth: .encoder)
    let cached = Array(ws.layerInput(2, tokens: batch.tokens))
    let ws2 = Workspace(dims: dims)
    ws2.storeActivations(from: 2)
    ws2.reserve(for: batch)
    _ = cached.withUnsafeBufferPointer { ws2.layerInput(2, tokens: batch.tokens).update(fromContentsOf: $0) }
    let pass = m.forward(batch, ws: ws2, training: true, dropoutKey: 11, startLayer: 2)
    m.loss(batch, ws: ws2)
    var g = [Float](repeating: 0, count: set.count)
    g.withUnsafeMutableBufferPointer { m.backward(batch, ws: ws2, plan: set.plan, grads: $0.baseAddress!, after: pass, dropoutKey: 11) }
    XCTAssertEqual(Array(ws2.outputs(batch: batch.count)), ref.logits)
    XCTAssertEqual(g, ref.grads)
  }
}

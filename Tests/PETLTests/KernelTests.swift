import XCTest
@testable import PETL

/// Checks of the performance kernels: the vector dropout hash against the scalar definition, the
/// multi-worker kernels against one worker, and the [CLS]-only last layer against the full one.
final class KernelTests: XCTestCase {
  /// A model big enough that the parallel kernels actually split (rows x cols above their thresholds).
  static let midDims = ModelDims(vocabSize: 60, hidden: 128, layers: 2, heads: 4, intermediate: 256,
                                 maxPositions: 80, typeVocab: 2, numLabels: 3, layerNormEps: 1e-5)
  static let lengths = [70, 33, 64, 17, 50, 9, 41, 20]

  override func tearDown() { Parallel.workerOverride = nil }

  func testVectorDropoutMatchesScalarDefinition() {
    for p: Float in [0.1, 0.5, 0.013, 0.9] {
      let n = 203
      let src = (0..<n).map { Float($0) * 0.37 - 11 }
      var dst = [Float](repeating: .nan, count: n)
      let key = CounterRNG.key(42, 7)
      src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { d in
          Dropout.apply(dst: d.baseAddress!, src: s.baseAddress!, count: n, key: key, index0: 5 << 16, p: p)
        }
      }
      let scale = 1 / (1 - p)
      for j in 0..<n {
        let want: Float = CounterRNG.uniform(key, UInt64(5 << 16 | j)) < p ? 0 : src[j] * scale
        XCTAssertEqual(dst[j].bitPattern, want.bitPattern, "p \(p) j \(j)")
      }
    }
  }

  private func run(_ m: BertModel, _ batch: Batch, _ set: TrainableSet, depth: BertModel.ForwardDepth,
                   storeFrom: Int = 0) -> (logits: [Float], grads: [Float]) {
    let ws = Workspace(dims: m.dims)
    ws.storeActivations(from: storeFrom)
    m.forward(batch, ws: ws, training: true, dropoutKey: 11, depth: depth)
    m.loss(batch, ws: ws)
    var g = [Float](repeating: 0, count: set.count)
    g.withUnsafeMutableBufferPointer {
      m.backward(batch, ws: ws, trainable: set, grads: $0.baseAddress!, dropoutKey: 11, training: true)
    }
    return (ws.logitsArray(batch: batch.count).flatMap { $0 }, g)
  }

  func testParallelKernelsMatchSerial() throws {
    let m = TestSupport.tinyModel(dims: Self.midDims)
    let batch = TestSupport.tinyBatch(dims: Self.midDims, lengths: Self.lengths)
    let set = try TrainableSet(modules: ["full"], layers: .all, layout: m.layout)
    for depth in [BertModel.ForwardDepth.logits, .logitsAllRows] {
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
    for (mods, layers) in [(["full"], LayerSelection.all), (["query"], .indices([1])), (["key", "value"], .indices([1])),
                           (["layernorm"], .indices([1])), (["intermediate"], .indices([1])), (["classifier"], .all)] {
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
    for (mods, layer) in [(["query"], 2), (["layernorm"], 3), (["output"], 1)] {
      let set = try TrainableSet(modules: mods, layers: .indices([layer]), layout: m.layout)
      for depth in [BertModel.ForwardDepth.logits, .logitsAllRows] {
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
    m.forward(batch, ws: ws2, training: true, dropoutKey: 11, startLayer: 2)
    m.loss(batch, ws: ws2)
    var g = [Float](repeating: 0, count: set.count)
    g.withUnsafeMutableBufferPointer { m.backward(batch, ws: ws2, trainable: set, grads: $0.baseAddress!, dropoutKey: 11) }
    XCTAssertEqual(ws2.logitsArray(batch: batch.count).flatMap { $0 }, ref.logits)
    XCTAssertEqual(g, ref.grads)
  }
}

/// Data-parallel shares and cost-balanced splits: every item exactly once, balanced by cost.
final class BalanceTests: XCTestCase {
  override func tearDown() { Parallel.workerOverride = nil }

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

  func testBalancedRangesCoverEveryItemOnce() {
    Parallel.workerOverride = 3
    for costs in [[Int](repeating: 5, count: 10), [100, 1, 1, 1, 1, 1, 1, 90], [0, 0, 7], [1]] {
      var seen = [Int](repeating: 0, count: costs.count)
      let lock = NSLock()
      Parallel.forBalanced(costs.count, minCost: 1, cost: { costs[$0] }) { _, range in
        lock.lock(); for i in range { seen[i] += 1 }; lock.unlock()
      }
      XCTAssertEqual(seen, [Int](repeating: 1, count: costs.count), "\(costs)")
    }
  }
}

/// The vector transcendental functions against double precision, and GELU's stored slope against
/// the derivative of the erf GELU.
final class FastMathTests: XCTestCase {
  private func lanes(_ from: Double, _ to: Double, count: Int) -> [F16x] {
    (0..<count).map { b in
      var v = F16x()
      for j in 0..<16 { v[j] = Float(from + (to - from) * Double(b * 16 + j) / Double(count * 16 - 1)) }
      return v
    }
  }

  func testErfExpTanhAgainstDouble() {
    var erfErr = 0.0, gaussErr = 0.0, expErr = 0.0, tanhErr = 0.0
    for v in lanes(-6, 6, count: 400) {
      let (e, g) = FastMath.erfAndGaussian(v)
      let ex = FastMath.exp(v), th = FastMath.tanh(v)
      for j in 0..<16 {
        let x = Double(v[j])
        erfErr = max(erfErr, abs(Double(e[j]) - Foundation.erf(x)))
        gaussErr = max(gaussErr, abs(Double(g[j]) - Foundation.exp(-x * x)))
        expErr = max(expErr, abs(Double(ex[j]) - Foundation.exp(x)) / Foundation.exp(x))
        tanhErr = max(tanhErr, abs(Double(th[j]) - Foundation.tanh(x)))
      }
    }
    XCTAssertLessThan(erfErr, 5e-7)    // A&S 7.1.26: 1.5e-7, plus float rounding
    XCTAssertLessThan(gaussErr, 3e-7)
    XCTAssertLessThan(expErr, 3e-7)    // about 2 ulp
    XCTAssertLessThan(tanhErr, 3e-7)
  }

  func testGELUSlopeIsTheDerivative() {
    let xs = lanes(-8, 8, count: 64).flatMap { v in (0..<16).map { v[$0] } }
    var u = xs, g = [Float](repeating: 0, count: xs.count), plain = g
    u.withUnsafeMutableBufferPointer { up in
      g.withUnsafeMutableBufferPointer { gp in
        Ops.geluForward(gp.baseAddress!, up.baseAddress!, count: xs.count, slope: up.baseAddress!)  // slope in place
      }
    }
    var u2 = xs
    u2.withUnsafeMutableBufferPointer { up in
      plain.withUnsafeMutableBufferPointer { Ops.geluForward($0.baseAddress!, up.baseAddress!, count: xs.count) }
    }
    XCTAssertEqual(g, plain, "the slope changes nothing in the forward")
    for (i, x32) in xs.enumerated() {
      let x = Double(x32)
      let cdf = 0.5 * (1 + Foundation.erf(x / 2.0.squareRoot()))
      XCTAssertEqual(Double(g[i]), x * cdf, accuracy: 1e-6 * max(1, abs(x)), "gelu(\(x))")
      let slope = cdf + x * Foundation.exp(-x * x / 2) / (2 * Double.pi).squareRoot()
      XCTAssertEqual(Double(u[i]), slope, accuracy: 2e-6, "gelu'(\(x))")
    }
  }
}

/// Length bucketing: a permutation per epoch, the plain shuffle when off, batches of similar lengths
/// when on, only the last batch short, the same order for the same seed.
final class BatchOrderTests: XCTestCase {
  func testBucketingKeepsEveryExampleAndGroupsLengths() {
    var rng = SeededGenerator(seed: 9)
    let lengths = (0..<1003).map { _ in 4 + Int(rng.next() % 60) }
    let bs = 32
    func spread(_ order: [Int]) -> Double {
      var total = 0, batches = 0, i = 0
      while i < order.count {
        let b = order[i..<min(i + bs, order.count)].map { lengths[$0] }
        total += b.max()! - b.min()!; batches += 1; i += bs
      }
      return Double(total) / Double(batches)
    }
    for epoch in 1...3 {
      let plain = BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: true, seed: 5, epoch: epoch)
      let bucketed = BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: true, seed: 5, epoch: epoch, bucketPool: 8)
      XCTAssertEqual(plain.sorted(), Array(0..<1003))
      XCTAssertEqual(bucketed.sorted(), Array(0..<1003), "each example once per epoch")
      XCTAssertEqual(bucketed, BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: true, seed: 5, epoch: epoch, bucketPool: 8))
      XCTAssertNotEqual(bucketed, BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: true, seed: 6, epoch: epoch, bucketPool: 8))
      XCTAssertLessThan(spread(bucketed), spread(plain) / 4, "epoch \(epoch): batches of similar lengths")
      // 1003 = 31 x 32 + 11. Pools of 8 x 32 = 256: the last pool is plain[768...], and its short
      // batch (its 11 longest) is the last window
      let lastPool = plain[768...].sorted { (lengths[$0], $0) < (lengths[$1], $1) }
      XCTAssertEqual(Array(bucketed.suffix(11)), Array(lastPool.suffix(11)))
    }
    XCTAssertEqual(BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: false, seed: 5, epoch: 1, bucketPool: 8),
                   Array(0..<1003), "no shuffle: file order, no bucketing")
  }

  func testLengthBucketsOptionKeepsOldSpecHashes() throws {
    var o = TrainOptions()
    let before = String(decoding: try JSONEncoder().encode(o), as: UTF8.self)
    XCTAssertFalse(before.contains("lengthBuckets"), "off: not encoded, so existing cells keep their hash")
    o.lengthBuckets = 20
    let data = try JSONEncoder().encode(o)
    XCTAssertEqual(try JSONDecoder().decode(TrainOptions.self, from: data).lengthBuckets, 20)
  }
}

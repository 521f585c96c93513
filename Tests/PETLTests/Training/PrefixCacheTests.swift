import XCTest
@testable import PETLModel
@testable import PETLData
@testable import PETLTraining

final class PrefixCacheTests: XCTestCase {
  /// With dropout off, training with the frozen-prefix cache gives the same parameters as without,
  /// and after the first pass every batch is served from the cache.
  func testCacheChangesNothingWithoutDropoutAndSkipsThePrefix() throws {
    func train(cache: Bool) throws -> ([Float], PrefixCache?) {
      let m = TestSupport.tinyModel()
      m.hiddenDropout = 0; m.attentionDropout = 0; m.classifierDropout = 0
      let set = try TrainableSet(modules: ["query", "ln_out"], layers: .indices([2]), layout: m.layout)
      let step = TrainingStep(model: m, trainable: set, optimizer: .adamw, weightDecay: 0.01, maxGradNorm: 1)
      if cache { step.prefixCache = PrefixCache(layer: 2, hidden: m.dims.hidden) }
      let batches = [TestSupport.tinyBatch(lengths: [5, 7, 3], seed: 3), TestSupport.tinyBatch(lengths: [4, 6], seed: 4)]
      // the second batch's examples must not collide with the first's ids
      var b2 = batches[1]; b2.exampleIds = [200, 201]
      for epoch in 0..<3 {
        for (i, b) in [batches[0], b2].enumerated() { step.run(b, lr: 1e-2, dropoutKey: UInt64(epoch * 2 + i)) }
      }
      return (m.snapshot(), step.prefixCache)
    }
    let (plain, _) = try train(cache: false)
    let (cached, cache) = try train(cache: true)
    XCTAssertEqual(cache?.misses, 2, "first epoch fills the cache")
    XCTAssertEqual(cache?.hits, 4, "later epochs skip the prefix")
    var worst: Float = 0
    for i in plain.indices { worst = max(worst, abs(plain[i] - cached[i])) }
    XCTAssertLessThan(worst, 1e-5)
  }

  /// With dropout on, the cache turns dropout off in the frozen prefix only: the result equals a
  /// model whose prefix layers have no dropout, which differs from plain training.
  func testCachedPrefixRunsWithoutDropout() throws {
    let m = TestSupport.tinyModel()
    let batch = TestSupport.tinyBatch()
    let ws = Workspace(dims: m.dims)
    let cache = PrefixCache(layer: 2, hidden: m.dims.hidden)
    cache.prepare(batch, model: m, ws: ws)
    let cachedInput = Array(ws.layerInput(2, tokens: batch.tokens))
    m.forward(batch, ws: ws, training: false, depth: .encoder)
    XCTAssertEqual(cachedInput, Array(ws.layerInput(2, tokens: batch.tokens)), "prefix = eval-mode prefix")
    m.forward(batch, ws: ws, training: true, dropoutKey: 9, depth: .encoder)
    XCTAssertNotEqual(cachedInput, Array(ws.layerInput(2, tokens: batch.tokens)), "training-mode prefix has dropout")
  }
}

extension PrefixCacheTests {
  /// Evaluation through a dev-set prefix cache gives the outputs of the full forward (eval has no
  /// dropout), whether the cache is being filled or serving.
  func testEvaluationThroughTheCacheIsExact() {
    let m = TestSupport.tinyModel()
    let batch = TestSupport.tinyBatch(lengths: [5, 7, 3, 6, 2], seed: 8)
    let examples = (0..<batch.count).map { b in
      EncodedExample(ids: Array(batch.inputIds[batch.offsets[b]..<batch.offsets[b + 1]]),
                     types: Array(batch.tokenTypes[batch.offsets[b]..<batch.offsets[b + 1]]), label: 0)
    }
    let ws = Workspace(dims: m.dims)
    let plain = Predictor.outputs(model: m, ws: ws, examples: examples, batchSize: 2)
    let cache = PrefixCache(layer: 2, hidden: m.dims.hidden)
    let filling = Predictor.outputs(model: m, ws: ws, examples: examples, batchSize: 2, prefix: cache)
    let serving = Predictor.outputs(model: m, ws: ws, examples: examples, batchSize: 2, prefix: cache)
    XCTAssertEqual(cache.misses, 3)
    XCTAssertEqual(cache.hits, 3)
    for (a, b) in zip(plain.flatMap { $0 }, filling.flatMap { $0 }) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    XCTAssertEqual(filling, serving)
  }
}

extension PrefixCacheTests {
  /// A head-only cell through the cache at the encoder's top trains the head exactly as without it,
  /// in every family: BERT's cache holds the frozen pooler's output; the others' holds the [CLS]
  /// rows, because their head's own dense layer (and its dropped input) trains.
  func testHeadOnlyCacheInEveryFamily() throws {
    for family in EncoderFamily.allCases {
      let dims = TestSupport.tinyDims(family)
      func train(cache: Bool) throws -> ([Float], PrefixCache?) {
        let m = TestSupport.tinyModel(dims: dims)
        m.hiddenDropout = 0; m.attentionDropout = 0  // the cache runs the frozen encoder without dropout
        let set = try TrainableSet(modules: [.classifier], layers: .all, layout: m.layout)
        XCTAssertEqual(set.plan.frozenPrefix, dims.layers, "\(family)")
        let step = TrainingStep(model: m, trainable: set, optimizer: .adamw, weightDecay: 0.01, maxGradNorm: 1)
        if cache { step.prefixCache = PrefixCache(layer: dims.layers, hidden: dims.hidden) }
        var b2 = TestSupport.tinyBatch(dims: dims, lengths: [4, 6], seed: 4)
        b2.exampleIds = [200, 201]
        for epoch in 0..<3 {
          for (i, b) in [TestSupport.tinyBatch(dims: dims), b2].enumerated() { step.run(b, lr: 1e-2, dropoutKey: UInt64(epoch * 2 + i)) }
        }
        return (m.snapshot(), step.prefixCache)
      }
      let (plain, _) = try train(cache: false)
      let (cached, cache) = try train(cache: true)
      XCTAssertEqual(cache?.hits, 4, "\(family)")
      XCTAssertNotEqual(plain, TestSupport.tinyModel(dims: dims).snapshot(), "\(family): the head trained")
      var worst: Float = 0
      for i in plain.indices { worst = max(worst, abs(plain[i] - cached[i])) }
      XCTAssertLessThan(worst, 1e-5, "\(family)")
    }
  }
}

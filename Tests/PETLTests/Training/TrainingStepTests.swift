import XCTest
@testable import PETLModel
@testable import PETLTraining

/// The global-batch divisor of `TrainingStep.run`: each data-parallel rank divides its shard's loss by
/// the GLOBAL batch size, so the all-reduce's plain sum of the shards' gradients is the gradient of
/// the whole batch on one rank, and one SGD step (no clipping, where nothing normalises a scale
/// error away) moves the parameters exactly as one rank would.
final class TrainingStepTests: XCTestCase {
  static let lengths = [5, 7, 3, 9, 4, 6]
  static let lr = 0.5
  static let dropoutKey: UInt64 = 0x5EED

  /// Sequences `range` of `batch` as their own batch: same tokens, labels and example ids (which key
  /// the dropout masks), as `TaskData.share` hands a rank its share of a global batch.
  func shard(_ batch: Batch, _ range: Range<Int>) -> Batch {
    let seqs = range.map { b in
      (ids: Array(batch.inputIds[batch.offsets[b]..<batch.offsets[b + 1]]),
       types: Array(batch.tokenTypes[batch.offsets[b]..<batch.offsets[b + 1]]))
    }
    return Batch(sequences: seqs, labels: Array(batch.labels[range]), exampleIds: Array(batch.exampleIds[range]))
  }

  /// A fresh tiny model (same parameters every call) and an SGD step without clipping on `set`.
  func freshStep(_ modules: [TrainableModule], _ layers: LayerSelection) throws -> TrainingStep {
    let m = TestSupport.tinyModel()
    let set = try TrainableSet(modules: modules, layers: layers, layout: m.layout)
    return TrainingStep(model: m, trainable: set, optimizer: .sgd, weightDecay: 0, maxGradNorm: 0)
  }

  /// The gradient slab as the all-reduce receives it (this rank's contribution) and the loss share,
  /// from a step at learning rate 0 (SGD then leaves the parameters bit-identical).
  func gradient(_ modules: [TrainableModule], _ layers: LayerSelection, _ batch: Batch, globalBatchSize: Int?) throws -> (grad: [Float], loss: Double) {
    let step = try freshStep(modules, layers)
    let before = step.model.snapshot()
    var captured: [Float] = []
    step.allReduce = { g, n in captured = Array(UnsafeBufferPointer(start: g, count: n)) }
    let loss = step.run(batch, globalBatchSize: globalBatchSize, lr: 0, dropoutKey: Self.dropoutKey)
    XCTAssertEqual(step.model.snapshot(), before, "lr 0 leaves the parameters as they were")
    return (captured, loss)
  }

  func maxAbs(_ x: [Float]) -> Float { x.reduce(0) { max($0, abs($1)) } }

  func testShardsWithTheGlobalDivisorSumToTheFullBatchGradient() throws {
    let full = TestSupport.tinyBatch(lengths: Self.lengths)
    let B = full.count
    let cases: [([TrainableModule], LayerSelection)] = [(["full"], .all), (["layernorm"], .all), (["query", "ln_out"], .indices([1]))]
    for (modules, layers) in cases {
      let what = "\(modules) \(layers)"
      // One rank, the whole batch (globalBatchSize nil: the batch's own size).
      let one = try gradient(modules, layers, full, globalBatchSize: nil)
      let scale = maxAbs(one.grad)
      XCTAssertGreaterThan(scale, 1e-3, what)
      let oneStep = try freshStep(modules, layers)
      let before = oneStep.model.snapshot()
      oneStep.run(full, lr: Self.lr, dropoutKey: Self.dropoutKey)
      let afterOne = oneStep.model.snapshot()

      for split in [[0..<3, 3..<6], [0..<1, 1..<3, 3..<6]] {
        let shards = split.map { shard(full, $0) }
        let label = "\(what), shards \(split.map(\.count))"
        // Right: every shard divides by the global size; the all-reduce sums.
        let parts = try shards.map { try gradient(modules, layers, $0, globalBatchSize: B) }
        var sum = [Float](repeating: 0, count: one.grad.count)
        for p in parts { for i in sum.indices { sum[i] += p.grad[i] } }
        var worst: Float = 0
        for i in sum.indices { worst = max(worst, abs(sum[i] - one.grad[i])) }
        // Only the summation order differs (GEMMs over fewer rows, then one add per rank).
        XCTAssertLessThanOrEqual(worst, 1e-5 * scale, "\(label): summed shard gradients against the whole batch's")
        XCTAssertEqual(parts.reduce(0) { $0 + $1.loss }, one.loss, accuracy: 1e-6 * abs(one.loss),
                       "\(label): the shards' loss shares add up to the batch's mean loss")

        // Wrong: each shard divides by its own size (the local batch). With two equal shards that is
        // exactly a x2 on the reduced gradient; unequal shards are weighted B/b_k instead of 1.
        let local = try shards.map { try gradient(modules, layers, $0, globalBatchSize: nil) }
        var wrong = [Float](repeating: 0, count: one.grad.count)
        for p in local { for i in wrong.indices { wrong[i] += p.grad[i] } }
        var off: Float = 0
        for i in wrong.indices { off = max(off, abs(wrong[i] - one.grad[i])) }
        XCTAssertGreaterThan(off, 0.3 * scale, "\(label): a local divisor must be visible (>= 3e4 x the tolerance)")
        if split.count == 2 {
          var twice: Float = 0
          for i in wrong.indices { twice = max(twice, abs(wrong[i] - 2 * one.grad[i])) }
          XCTAssertLessThanOrEqual(twice, 2e-5 * scale, "\(label): two equal shards with a local divisor give 2x the gradient")
        }

        // The step itself: rank 0 of the group, its all-reduce adding the other ranks' gradients,
        // updates like the one-rank step (SGD, no clipping: the update is -lr x the summed gradient).
        let dp = try freshStep(modules, layers)
        let others = parts.dropFirst().map(\.grad)
        dp.allReduce = { g, n in for o in others { for i in 0..<n { g[i] += o[i] } } }
        dp.run(shards[0], globalBatchSize: B, lr: Self.lr, dropoutKey: Self.dropoutKey)
        let afterDP = dp.model.snapshot()
        var update: Float = 0
        for i in before.indices { update = max(update, abs(afterOne[i] - before[i])) }
        XCTAssertGreaterThan(update, 1e-3, label)
        var worstUpdate: Float = 0
        for i in before.indices {
          let d1 = afterOne[i] - before[i], d2 = afterDP[i] - before[i]
          worstUpdate = max(worstUpdate, abs(d2 - d1) - 1e-5 * update - 4 * max(abs(afterOne[i]), abs(before[i])).ulp)
        }
        XCTAssertLessThanOrEqual(worstUpdate, 0, "\(label): data-parallel update against one rank's")
        // Frozen parameters: untouched, bit for bit.
        for (k, slot) in dp.model.layout.slots.enumerated() where dp.trainable.plan.targets[k] == nil {
          XCTAssertEqual(Array(afterDP[slot.range]), Array(before[slot.range]), "\(label): frozen \(slot.name)")
        }
      }
    }
  }
}

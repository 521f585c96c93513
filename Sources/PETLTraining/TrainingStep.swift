import PETLModel

/// One optimizer step of a cell: forward, loss, backward, all-reduce the gradient slab across the
/// data-parallel group (one fused call: only trainable parameters travel), clip, update (which leaves
/// the slab zeroed for the next step), and in bf16 round the updated weights' GEMM copies again.
/// Owns the gradient slab and the optimizer state; allocates nothing per step.
public final class TrainingStep {
  public let model: EncoderModel
  public let trainable: TrainableSet
  public let workspace: Workspace
  public let optimizer: Optimizer
  public let maxGradNorm: Double
  /// The contiguous gradient slab: exactly the trainable parameters, in slab order.
  public let grads: UnsafeMutablePointer<Float>
  /// Sums the gradient slab over the data-parallel group in one fused call; nil for one rank.
  public var allReduce: ((UnsafeMutablePointer<Float>, Int) -> Void)?
  public private(set) var lastGradNorm: Double = 0
  /// Frozen-prefix cache for this cell (nil: off). See `PrefixCache`.
  public var prefixCache: PrefixCache?
  /// Trainable slots with bf16 copies (`Precision.bf16`), rounded again after each update.
  private let bf16Slots: [Int]

  public init(model: EncoderModel, trainable: TrainableSet, optimizer: TrainOptions.Optimizer,
              weightDecay: Double, maxGradNorm: Double) {
    self.model = model
    self.trainable = trainable
    self.workspace = Workspace(dims: model.dims, precision: model.precision, lora: model.layout.lora)
    bf16Slots = model.bf16Slots(of: trainable.plan)
    workspace.storeActivations(from: trainable.plan.lowestLayer)
    self.optimizer = Optimizer(kind: optimizer, trainable: trainable, weightDecay: weightDecay)
    self.maxGradNorm = maxGradNorm
    grads = .allocate(capacity: max(trainable.count, 1))
    grads.initialize(repeating: 0, count: max(trainable.count, 1))
  }

  deinit { grads.deallocate() }

  /// Bytes the gradient all-reduce carries per step: exactly 4 x trainable parameters.
  public var allReduceBytes: Int { 4 * trainable.count }

  /// Runs one step on this rank's shard of a global batch of `globalBatchSize` examples and returns
  /// this shard's share of the global mean loss (shards' returns add up to it). `training` turns
  /// dropout on. After the all-reduce every rank holds the same gradients, so `lastGradNorm` (NaN
  /// when the step diverged) is the same everywhere.
  @discardableResult
  public func run(_ batch: Batch, globalBatchSize: Int? = nil, lr: Double, dropoutKey: UInt64, training: Bool = true) -> Double {
    let n = trainable.count  // the gradient slab is zero: from init, then from each update
    var loss = 0.0
    if batch.count > 0 {
      let pass = prefixCache?.forward(batch, model: model, ws: workspace, training: training, dropoutKey: dropoutKey)
        ?? model.forward(batch, ws: workspace, training: training, dropoutKey: dropoutKey)
      loss = model.loss(batch, ws: workspace, divisor: globalBatchSize ?? batch.count)
      model.backward(batch, ws: workspace, plan: trainable.plan, grads: grads, after: pass, dropoutKey: dropoutKey,
                     training: training)
    }
    if let allReduce { allReduce(grads, n) }
    lastGradNorm = Optimizer.clip(grads, count: n, maxNorm: maxGradNorm)
    optimizer.update(params: model.params, grads: grads, lr: lr)
    if !bf16Slots.isEmpty { model.refreshBF16Operands(slots: bf16Slots) }
    return loss
  }
}

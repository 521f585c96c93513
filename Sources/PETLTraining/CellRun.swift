import Foundation
import PETLKernels
import PETLModel
import PETLData

/// One training trajectory of a cell at one learning rate and seed: the model, its optimizer and where
/// it is (step, epoch, position in the epoch's batch order), so it can stop at a rung of the
/// learning-rate search and go on later exactly as if it had never stopped.
final class CellRun: SearchTrial {
  /// The counter-RNG stream of the dropout masks ("DROP"): step `s` of seed `seed` draws its masks from
  /// key (seed, dropoutStream, s), the same on every rank and every resume.
  static let dropoutStream: UInt64 = 0x4452_4F50

  let options: TrainOptions
  let seed: UInt64
  let data: TaskData
  let model: EncoderModel
  let trainable: TrainableSet
  let step: TrainingStep
  let devCaches: [String: PrefixCache]
  let evaluation: CellEvaluation
  let group: Collective?
  let lr: Double
  let schedule: LinearSchedule
  let totalSteps: Int
  let log: (String) -> Void
  var result: CellResult
  private(set) var stepsDone = 0
  /// The mean training loss of each finished epoch (for the collapse check).
  private(set) var epochLosses: [Double] = []
  private var epoch = 0
  private var position = 0
  private var order: [Int] = []
  private var lossSum = 0.0, batches = 0
  private var epochStart = Date()
  private let lengths: [Int]
  private var progress: Progress
  /// The trainable encoder scalars (head excluded) as pretrained, for `relativeChange`.
  private let initial: [Float]
  private let encoderSegments: [GradientPlan.Segment]
  /// The primary dev split's outputs at the last full evaluation.
  private var lastOutputs: [[Float]] = []

  init(options: TrainOptions, seed: UInt64, data: TaskData, model: EncoderModel, trainable: TrainableSet,
       step: TrainingStep, devCaches: [String: PrefixCache], group: Collective?, lr: Double, totalSteps: Int,
       progressInterval: TimeInterval, log: @escaping (String) -> Void) {
    self.options = options; self.seed = seed; self.data = data; self.model = model; self.trainable = trainable
    self.step = step; self.devCaches = devCaches; self.group = group; self.lr = lr; self.totalSteps = totalSteps
    self.log = log
    evaluation = CellEvaluation(data: data, batchSize: options.batchSize, group: group)
    schedule = LinearSchedule(base: lr, warmupSteps: Int((options.warmupRatio * Double(totalSteps)).rounded()),
                              totalSteps: totalSteps)
    lengths = data.train.map(\.ids.count)
    let ranks = group?.size ?? 1
    result = CellResult(status: .ok, trainableParameters: trainable.count, totalParameters: model.layout.count,
                        allreduceBytesPerStep: ranks > 1 ? step.allReduceBytes : 0, ranks: ranks)
    result.primaryMetric = data.task.primaryMetric
    progress = Progress(totalSteps: totalSteps, interval: progressInterval, ranks: ranks)
    let head = [model.layout.range(of: .classifier), model.layout.range(of: .pooler)].filter { !$0.isEmpty }
    encoderSegments = trainable.plan.segments.filter { seg in !head.contains { $0.contains(seg.paramOffset) } }
    var values: [Float] = []
    for seg in encoderSegments { values += UnsafeBufferPointer(start: model.params + seg.paramOffset, count: seg.count) }
    initial = values
    result.pretrainedMeanAbs = values.isEmpty ? nil : values.reduce(0.0) { $0 + Double(abs($1)) } / Double(values.count)
  }

  var failure: String? { result.status == .failed ? result.reason ?? "failed" : nil }

  /// Trains until step `target` (or the end, or divergence), evaluating dev at each epoch's end.
  func advance(to target: Int) throws {
    let o = options
    let ranks = group?.size ?? 1, rank = group?.rank ?? 0
    let n = data.train.count
    while stepsDone < min(target, totalSteps) && result.status == .ok {
      if position == 0 {
        epoch += 1
        epochStart = Date()
        order = BatchOrder.epoch(lengths: lengths, batchSize: o.batchSize, shuffle: o.shuffle,
                                 seed: seed, epoch: epoch, bucketPool: o.lengthBuckets)
        lossSum = 0; batches = 0
      }
      let global = order[position..<min(position + o.batchSize, n)]
      // This rank's contiguous share of the global batch, balanced by tokens.
      let batch = TaskData.batch(data.train, indices: TaskData.share(data.train, of: global, rank: rank, ranks: ranks))
      let loss = step.run(batch, globalBatchSize: global.count, lr: schedule.rate(at: stepsDone),
                          dropoutKey: CounterRNG.key(seed, Self.dropoutStream, UInt64(stepsDone)))
      stepsDone += 1
      guard step.lastGradNorm.isFinite else {
        result.status = .failed
        result.reason = "diverged: gradient norm is \(step.lastGradNorm) at step \(stepsDone) (learning rate \(lr))"
        return
      }
      lossSum += loss; batches += 1
      position += o.batchSize
      if let line = progress.line(step: stepsDone, epoch: epoch, examples: global.count, meanLoss: lossSum / Double(batches)) {
        log(line)
      }
      if position >= n || stepsDone == totalSteps {
        position = 0
        if let group, ranks > 1 { lossSum = group.allreduceSum(lossSum) }
        let trainLoss = lossSum / Double(max(batches, 1))
        epochLosses.append(trainLoss)
        let dev = try evaluate()
        result.epochs.append(.init(epoch: epoch, trainLoss: trainLoss, dev: dev, seconds: Date().timeIntervalSince(epochStart)))
        result.dev = dev
        log("epoch \(epoch): train loss \(String(format: "%.4f", trainLoss))  " + metricsLine(dev))
      }
    }
  }

  /// Dev metrics of the current parameters (the primary split's outputs are kept for `finish`).
  func evaluate() throws -> [String: Double] {
    let (metrics, outputs) = try evaluation.run(model: model, ws: step.workspace, prefixes: devCaches)
    lastOutputs = outputs
    return metrics
  }

  /// Dev metrics and the mean dev loss (`loss`) on the first half of the primary dev split: what the
  /// candidates of a learning-rate search are compared on (half the cost of a full evaluation; the
  /// cell's reported score is still on all of dev).
  func evaluateAtRung(task: TaskDescriptor) throws -> [String: Double] {
    let half = try evaluation.primary(half: true)
    var (metrics, outputs) = try evaluation.run(model: model, ws: step.workspace, prefixes: devCaches, splits: [half])
    metrics["loss"] = meanLoss(task: data.task, outputs: outputs, labels: half.examples.map(\.label))
    if !task.isRegression {
      let predicted = outputs.map(argmax)
      metrics[SearchRungs.majorityShareKey] = Collapse.share(predicted, classes: task.numLabels)
      // Whatever the task ranks by (CoLA: MCC), the rung's accuracy is what chance is judged on.
      if metrics["accuracy"] == nil, !predicted.isEmpty {
        metrics["accuracy"] = accuracy(predicted, half.examples.map { Int($0.label) })
      }
    }
    return metrics
  }

  /// The result once training has ended: steps, how far the weights moved, the dev interval, the
  /// predictions, and the collapse check.
  func finish() throws -> CellResult {
    var r = result
    r.steps = stepsDone
    r.moved = relativeChange()
    guard r.status == .ok, !lastOutputs.isEmpty else { return r }
    let labels = try evaluation.primary().examples.map(\.label)
    r.devInterval = Bootstrap.interval(task: data.task, outputs: lastOutputs, labels: labels, seed: seed)
    r.devPredictions = DevPredictions(task: data.task, outputs: lastOutputs, labels: labels)
    r.collapse = Collapse.check(task: data.task, outputs: lastOutputs, labels: labels, epochLosses: epochLosses,
                                trainLabels: data.train.map(\.label))
    return r
  }

  /// How far training moved the trainable encoder scalars: ‖w − w₀‖ / ‖w₀‖ (nil when only the head trains).
  func relativeChange() -> Double? {
    guard !initial.isEmpty else { return nil }
    var diff = 0.0, base = 0.0, k = 0
    for seg in encoderSegments {
      for i in 0..<seg.count {
        let w0 = Double(initial[k]), d = Double(model.params[seg.paramOffset + i]) - w0
        diff += d * d; base += w0 * w0; k += 1
      }
    }
    return base > 0 ? (diff / base).squareRoot() : nil
  }
}

import Foundation
import PETLKernels
import PETLModel
import PETLText
import PETLData
import PETLSupport

/// Trains one cell of the study (task x trainable set x seed x learning rate) on one rank, or on a
/// data-parallel group: each rank takes its share of every global batch, one fused all-reduce sums
/// the trainable gradients, and every rank applies the same update. This is what `train` runs alone
/// and what every group runs inside the grid.
public struct CellTrainer {
  public let spec: CellSpec
  public let context: StudyContext
  public let group: Collective?
  /// Parameters loaded over the pretrained ones before training (e.g. a fixed head).
  public var adapter: URL?
  /// Progress lines: one per epoch, and within an epoch one every `progressInterval` seconds (a cell
  /// on real GLUE sizes runs for an hour; a silent one cannot be told from a hung one).
  public var log: (String) -> Void
  public var progressInterval: TimeInterval = 30

  public init(spec: CellSpec, context: StudyContext, group: Collective? = nil, adapter: URL? = nil,
              log: @escaping (String) -> Void = { _ in }) {
    self.spec = spec; self.context = context; self.group = group; self.adapter = adapter; self.log = log
  }

  /// The trained model beside the journaled result, for `--save-adapter` and tests.
  public struct Outcome {
    public var result: CellResult
    public var model: EncoderModel
    public var trainable: TrainableSet
  }

  public func run() throws -> Outcome {
    let start = Date()
    let o = spec.options
    let task = try context.tasks.named(spec.task)
    let data = try context.data(task, options: o)
    let ranks = group?.size ?? 1
    guard o.batchSize >= ranks else {
      throw PETLError("--batch-size \(o.batchSize) is smaller than the data-parallel group (\(ranks) ranks)")
    }
    let n = data.train.count
    let stepsPerEpoch = (n + o.batchSize - 1) / o.batchSize
    let totalSteps = o.maxSteps ?? (o.epochs * stepsPerEpoch)
    guard totalSteps > 0 else { throw PETLError("nothing to train: --epochs or --max-steps must be positive") }

    let run: CellRun
    var selection: LearningRateSelection? = nil
    if let candidates = o.learningRateCandidates, candidates.count > 1 {
      (run, selection) = try successiveHalving(candidates, task: task, data: data, totalSteps: totalSteps)
    } else {
      run = try makeRun(lr: o.learningRate, task: task, data: data, totalSteps: totalSteps, announce: true)
    }
    try run.advance(to: totalSteps)
    var result = run.result
    result.selection = selection
    result.steps = run.s
    result.moved = run.relativeChange()
    result.devInterval = run.interval()
    result.wallSeconds = Date().timeIntervalSince(start)
    return Outcome(result: result, model: run.model, trainable: run.trainable)
  }

  /// Successive halving over learning rates, two rungs (`LearningRateSelection.rungs`). Every
  /// candidate trains the first twelfth of the cell's steps on its own full-length schedule; the two
  /// with the lowest mean loss on the first half of the primary dev split go on to a fifth of the
  /// steps, and the one with the best dev metric there (ties: lower loss, then the smaller rate)
  /// trains to the end, from where it stopped, so its trajectory (batches, dropout masks, schedule)
  /// is exactly that of a plain cell at its rate.
  ///
  /// Why two rungs: at a twelfth of the steps most candidates are still at chance accuracy, where the
  /// metric cannot rank them, and the loss ranks by how fast a rate moves, not where it ends (a
  /// rate that is fastest early can collapse later). The early rung only drops the worst; the choice
  /// is made at a fifth, where the metric ranks. With three candidates a cell trains 1.28 plain
  /// cells' steps; at most three runs are alive at once.
  func successiveHalving(_ candidates: [Double], task: TaskDescriptor, data: TaskData,
                         totalSteps: Int) throws -> (CellRun, LearningRateSelection) {
    let rungs = LearningRateSelection.rungs(totalSteps: totalSteps, candidates: candidates.count)
    var tried = candidates.map { LearningRateSelection.Candidate(learningRate: $0, dev: [:], steps: 0) }
    var alive: [(run: CellRun?, index: Int)] = candidates.indices.map { (nil, $0) }
    for (r, rung) in rungs.enumerated() {
      let last = r == rungs.count - 1
      // The best `rung.keep` so far, best first; (score, tiebreak) compared as a tuple.
      var kept: [(run: CellRun, index: Int, key: (Double, Double))] = []
      for (existing, index) in alive {
        let run = try existing ?? makeRun(lr: candidates[index], task: task, data: data, totalSteps: totalSteps,
                                          announce: index == 0)
        try run.advance(to: rung.steps)
        tried[index].steps = run.s
        var key = (-Double.infinity, -Double.infinity)
        if run.result.status == .failed {
          tried[index].reason = run.result.reason
        } else {
          do {
            tried[index].dev = try run.evaluateAtRung()
            let loss = tried[index].dev["loss"] ?? .infinity
            key = last ? (tried[index].dev[task.primaryMetric] ?? -.infinity, -loss) : (-loss, 0)
          } catch let failure as CellFailure { tried[index].reason = failure.reason }
        }
        log("lr \(String(format: "%.0e", candidates[index])): step \(run.s)/\(totalSteps) " + (tried[index].reason.map { "failed: \($0)" }
          ?? tried[index].dev.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: "  ")))
        // Strictly better goes first; on a tie the earlier (smaller) rate stays ahead.
        let at = kept.firstIndex { key > $0.key } ?? kept.count
        kept.insert((run, index, key), at: at)
        if kept.count > rung.keep { kept.removeLast() }
      }
      alive = kept.map { ($0.run, $0.index) }
    }
    let winner = alive[0].run!
    let final = rungs.last!.steps
    log("lr \(String(format: "%.0e", winner.lr)) chosen of \(candidates.map { String(format: "%.0e", $0) }.joined(separator: ", ")) on dev at step \(final)")
    return (winner, LearningRateSelection(candidates: tried, chosen: winner.lr, rungSteps: final))
  }

  /// A fresh model (pretrained weights, the seed's head) with its optimizer, ready to train at `lr`.
  func makeRun(lr: Double, task: TaskDescriptor, data: TaskData, totalSteps: Int, announce: Bool) throws -> CellRun {
    let o = spec.options
    let (model, report) = try context.freshModel(numLabels: task.numLabels, seed: o.seed)
    if announce, let msg = report.message { log(msg) }
    if let adapter {
      let names = try AdapterFile.load(adapter, into: model)
      if announce { log("loaded \(names.count) tensors from \(adapter.path)") }
    }
    if let p = o.dropout {
      guard p >= 0 && p < 1 else { throw PETLError("--dropout \(p): must be in [0, 1)") }
      model.hiddenDropout = Float(p); model.attentionDropout = Float(p); model.classifierDropout = Float(p)
    }
    let trainable = try TrainableSet(modules: spec.modules, layers: spec.layers, layout: model.layout,
                                     randomCount: spec.randomCount, seed: o.seed)
    try model.setPrecision(o.precision)
    try checkSamePlan(trainable)
    let ranks = group?.size ?? 1
    let step = TrainingStep(model: model, trainable: trainable, optimizer: o.optimizer,
                            weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm)
    if let group, ranks > 1 { step.allReduce = { group.allreduceSum($0, count: $1) } }
    // Dev evaluation runs without dropout anywhere, so its prefix is cached exactly.
    var devCaches: [String: PrefixCache] = [:]
    // A head-only cell (nothing below the classifier trains) caches the pooled outputs.
    if o.prefixCache, let layer = trainable.plan.frozenPrefix {
      // An adapter may change the prefix's weights: then this cell's caches are its own.
      func cache(_ split: String) -> PrefixCache {
        adapter == nil ? context.prefixCache(task, options: o, layer: layer, split: split)
          : PrefixCache(layer: layer, hidden: model.dims.hidden)
      }
      step.prefixCache = cache("train")
      for (split, _) in data.dev { devCaches[split] = cache("dev:" + split) }
    }
    step.workspace.reserve(tokens: o.batchSize * o.maxLength, batch: o.batchSize, maxLength: o.maxLength)
    guard lr > 0 && lr.isFinite else { throw PETLError("learning rate \(lr): must be positive") }
    let schedule = LinearSchedule(base: lr, warmupSteps: Int((o.warmupRatio * Double(totalSteps)).rounded()),
                                  totalSteps: totalSteps)
    return CellRun(trainer: self, data: data, model: model, trainable: trainable, step: step, devCaches: devCaches,
                   lr: lr, schedule: schedule, totalSteps: totalSteps)
  }

  /// Dev metrics of the current parameters, over every dev split. Under data parallelism each rank
  /// scores a contiguous share and one all-reduce assembles the outputs.
  func evaluate(model: EncoderModel, ws: Workspace, data: TaskData, prefixes: [String: PrefixCache] = [:]) throws -> [String: Double] {
    try evaluateWithOutputs(model: model, ws: ws, data: data, prefixes: prefixes).metrics
  }

  /// `evaluate`, also returning the primary split's outputs (for the bootstrap interval). With
  /// `splits`, only those (split, examples) pairs: a split's examples must be a prefix of the task's,
  /// so that example i is the same example in the prefix caches.
  func evaluateWithOutputs(model: EncoderModel, ws: Workspace, data: TaskData, prefixes: [String: PrefixCache] = [:],
                           splits: [(split: String, examples: [EncodedExample])]? = nil) throws -> (metrics: [String: Double], primary: [[Float]]) {
    var metrics: [String: Double] = [:]
    var primary: [[Float]] = []
    for (split, examples) in splits ?? data.dev {
      let outputs = Predictor.outputs(model: model, ws: ws, examples: examples, batchSize: spec.options.batchSize,
                                      group: group, prefix: prefixes[split])
      // Outputs are all-reduced, so every rank of a group decides this alike.
      guard outputs.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
        throw CellFailure("diverged: non-finite outputs on \(data.task.name) \(split)")
      }
      do {
        for (k, v) in try PETLData.evaluate(task: data.task, split: split, outputs: outputs, labels: examples.map(\.label)) { metrics[k] = v }
      } catch let e as PETLError {
        throw PETLError("evaluating \(data.task.name) \(split): \(e.message)")
      }
      if split == data.task.devSplits[0] { primary = outputs }
    }
    return (metrics, primary)
  }

  /// Data-parallel pre-flight: every rank must train the same scalars in the same gradient order.
  func checkSamePlan(_ t: TrainableSet) throws {
    guard let group, group.size > 1 else { return }
    var mine = Array(t.planHash.utf8)
    var root = mine
    group.broadcast(bytes: &root, root: 0)
    let mismatch = group.allreduceSum(root == mine ? 0 : 1)
    mine.removeAll()
    guard mismatch == 0 else {
      throw PETLError("data-parallel group disagrees on the trainable plan (\(Int(mismatch)) rank(s) differ): same binary, model and flags on every rank?")
    }
  }
}

/// One training trajectory of a cell at one learning rate: the model, its optimizer and where it is
/// (step, epoch, position in the epoch's batch order), so it can stop at a rung and go on later.
final class CellRun {
  let trainer: CellTrainer
  let data: TaskData
  let model: EncoderModel
  let trainable: TrainableSet
  let step: TrainingStep
  let devCaches: [String: PrefixCache]
  let lr: Double
  let schedule: LinearSchedule
  let totalSteps: Int
  var result: CellResult
  private(set) var s = 0
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

  init(trainer: CellTrainer, data: TaskData, model: EncoderModel, trainable: TrainableSet, step: TrainingStep,
       devCaches: [String: PrefixCache], lr: Double, schedule: LinearSchedule, totalSteps: Int) {
    self.trainer = trainer; self.data = data; self.model = model; self.trainable = trainable; self.step = step
    self.devCaches = devCaches; self.lr = lr; self.schedule = schedule; self.totalSteps = totalSteps
    lengths = data.train.map(\.ids.count)
    let ranks = trainer.group?.size ?? 1
    result = CellResult(status: .ok, trainableParameters: trainable.count, totalParameters: model.layout.count,
                        allreduceBytesPerStep: ranks > 1 ? step.allReduceBytes : 0, ranks: ranks)
    result.primaryMetric = data.task.primaryMetric
    progress = Progress(totalSteps: totalSteps, interval: trainer.progressInterval, ranks: ranks)
    let head = [model.layout.range(of: .classifier), model.layout.range(of: .pooler)].filter { !$0.isEmpty }
    encoderSegments = trainable.plan.segments.filter { seg in !head.contains { $0.contains(seg.paramOffset) } }
    var values: [Float] = []
    for seg in encoderSegments { values += UnsafeBufferPointer(start: model.params + seg.paramOffset, count: seg.count) }
    initial = values
    result.pretrainedMeanAbs = values.isEmpty ? nil : values.reduce(0.0) { $0 + Double(abs($1)) } / Double(values.count)
  }

  /// Trains until step `target` (or the end, or divergence), evaluating dev at each epoch's end.
  func advance(to target: Int) throws {
    let o = trainer.spec.options
    let ranks = trainer.group?.size ?? 1, rank = trainer.group?.rank ?? 0
    let n = data.train.count
    while s < min(target, totalSteps) && result.status == .ok {
      if position == 0 {
        epoch += 1
        epochStart = Date()
        order = BatchOrder.epoch(lengths: lengths, batchSize: o.batchSize, shuffle: o.shuffle,
                                 seed: o.seed, epoch: epoch, bucketPool: o.lengthBuckets)
        lossSum = 0; batches = 0
      }
      let global = order[position..<min(position + o.batchSize, n)]
      // This rank's contiguous share of the global batch, balanced by tokens.
      let batch = TaskData.batch(data.train, indices: TaskData.share(data.train, of: global, rank: rank, ranks: ranks))
      let loss = step.run(batch, globalBatchSize: global.count, lr: schedule.rate(at: s),
                          dropoutKey: CounterRNG.key(o.seed, 0x4452_4F50, UInt64(s)))
      s += 1
      guard step.lastGradNorm.isFinite else {
        result.status = .failed
        result.reason = "diverged: gradient norm is \(step.lastGradNorm) at step \(s) (learning rate \(lr))"
        return
      }
      lossSum += loss; batches += 1
      position += o.batchSize
      if let line = progress.line(step: s, epoch: epoch, examples: global.count, meanLoss: lossSum / Double(batches)) {
        trainer.log(line)
      }
      if position >= n || s == totalSteps {
        position = 0
        if let group = trainer.group, ranks > 1 { lossSum = group.allreduceSum(lossSum) }
        let trainLoss = lossSum / Double(max(batches, 1))
        let dev = try evaluate()
        result.epochs.append(.init(epoch: epoch, trainLoss: trainLoss, dev: dev, seconds: Date().timeIntervalSince(epochStart)))
        result.dev = dev
        trainer.log("epoch \(epoch): train loss \(String(format: "%.4f", trainLoss))  "
          + dev.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: "  "))
      }
    }
  }

  /// Dev metrics of the current parameters (the primary split's outputs are kept for `interval`).
  func evaluate() throws -> [String: Double] {
    let (metrics, outputs) = try trainer.evaluateWithOutputs(model: model, ws: step.workspace, data: data, prefixes: devCaches)
    lastOutputs = outputs
    return metrics
  }
  private var lastOutputs: [[Float]] = []

  /// Dev metrics and the mean dev loss (`loss`) on the first half of the primary dev split: what
  /// the candidates of a learning-rate choice are compared on (half the cost of a full evaluation;
  /// the cell's reported score is still on all of dev).
  func evaluateAtRung() throws -> [String: Double] {
    guard let primary = data.dev.first(where: { $0.split == data.task.devSplits[0] }) else {
      throw PETLError("\(data.task.name): no \(data.task.devSplits[0]) split to choose a learning rate on")
    }
    let half = Array(primary.examples.prefix((primary.examples.count + 1) / 2))
    var (metrics, outputs) = try trainer.evaluateWithOutputs(model: model, ws: step.workspace, data: data, prefixes: devCaches,
                                                             splits: [(primary.split, half)])
    metrics["loss"] = meanLoss(task: data.task, outputs: outputs, labels: half.map(\.label))
    return metrics
  }

  /// The 95% bootstrap interval of the primary metric at the last evaluation, over dev examples.
  func interval() -> [Double]? {
    guard result.status == .ok, !lastOutputs.isEmpty,
          let split = data.dev.first(where: { $0.split == data.task.devSplits[0] }) else { return nil }
    return Bootstrap.interval(task: data.task, outputs: lastOutputs, labels: split.examples.map(\.label),
                              seed: trainer.spec.options.seed)
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

/// When and what a cell prints while it trains: step/total, the epoch's running loss, examples per
/// second and the ETA, at most once per interval.
package struct Progress {
  let totalSteps: Int
  let interval: TimeInterval
  let ranks: Int
  let start = Date()
  var last = Date()
  var examples = 0

  init(totalSteps: Int, interval: TimeInterval, ranks: Int) {
    self.totalSteps = totalSteps; self.interval = interval; self.ranks = ranks
  }

  mutating func line(step: Int, epoch: Int, examples n: Int, meanLoss: Double) -> String? {
    examples += n
    let now = Date()
    guard now.timeIntervalSince(last) >= interval, step < totalSteps else { return nil }
    last = now
    let elapsed = now.timeIntervalSince(start)
    let eta = elapsed / Double(step) * Double(totalSteps - step)
    // Under data parallelism a rank's loss is its shard's share of the global mean: scaled by the
    // group size it estimates the mean (the epoch line reports the exact, all-reduced one).
    let loss = meanLoss * Double(ranks)
    return "step \(step)/\(totalSteps) (epoch \(epoch))  loss \(ranks > 1 ? "~" : "")\(String(format: "%.4f", loss))  "
      + "\(String(format: "%.1f", Double(examples) / elapsed)) ex/s  ETA \(Progress.duration(eta))"
  }

  package static func duration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
    return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
  }
}

/// Forward passes in eval mode over many examples: sorted by length so batches pack tightly.
public enum Predictor {
  /// Logits (or the regression score) per example, in the examples' order. With a group, each rank
  /// computes a contiguous share (balanced by tokens, as in training) and an all-reduce gives every
  /// rank all outputs. With `prefix` (a
  /// cache of these examples at a frozen layer) the forward starts there: exact, as eval has no dropout.
  public static func outputs(model: EncoderModel, ws: Workspace, examples: [EncodedExample], batchSize: Int = 32,
                             group: Collective? = nil, prefix: PrefixCache? = nil) -> [[Float]] {
    let C = model.dims.numLabels, n = examples.count
    let ranks = group?.size ?? 1, rank = group?.rank ?? 0
    let all = Array(0..<n)
    let mine = TaskData.share(examples, of: all[...], rank: rank, ranks: ranks).sorted { examples[$0].ids.count < examples[$1].ids.count }
    var flat = [Float](repeating: 0, count: n * C)
    var i = 0
    while i < mine.count {
      let idx = mine[i..<min(i + batchSize, mine.count)]
      let batch = TaskData.batch(examples, indices: idx)
      if let prefix {
        prefix.forward(batch, model: model, ws: ws, training: false, forBackward: false)
      } else {
        model.forward(batch, ws: ws, training: false, forBackward: false)
      }
      let logits = ws.outputs(batch: idx.count)
      for (b, e) in idx.enumerated() { for c in 0..<C { flat[e * C + c] = logits[b * C + c] } }
      i += batchSize
    }
    if let group, ranks > 1 { flat.withUnsafeMutableBufferPointer { group.allreduceSum($0.baseAddress!, count: n * C) } }
    return (0..<n).map { Array(flat[($0 * C)..<(($0 + 1) * C)]) }
  }
}

import Foundation
import PETLKernels
import PETLModel
import PETLData
import PETLSupport

/// Trains one cell of the study (task x trainable set x seed x learning rate) on one rank, or on a
/// data-parallel group: each rank takes its share of every global batch, one fused all-reduce sums
/// the trainable gradients, and every rank applies the same update. This is what `train` runs alone
/// and what every group runs inside the grid.
///
/// A cell is one or more attempts: a run that collapsed (`Collapse`) is set aside with its evidence
/// and, up to `TrainOptions.restarts` times, trained again from seed + `restartSeedStride` x attempt.
public struct CellTrainer {
  public let spec: CellSpec
  public let context: StudyContext
  public let group: Collective?
  /// Parameters loaded over the pretrained ones before training (e.g. a fixed head).
  public var adapter: URL?
  /// The rate the cell of seed `spec.options.rateFromSeed` chose (the grid hands it over); nil: this
  /// cell searches its candidates itself.
  public var inheritedRate: Double?
  /// Progress lines: one per epoch, and within an epoch one every `progressInterval` seconds (a cell
  /// on real GLUE sizes runs for an hour; a silent one cannot be told from a hung one).
  public var log: (String) -> Void
  public var progressInterval: TimeInterval = 30

  /// Restart `r` of seed `s` trains with seed s + r x this (head, batch order, dropout, random subset).
  public static let restartSeedStride: UInt64 = 1_000_000

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
    try o.validate()
    let task = try context.tasks.named(spec.task)
    let data = try context.data(task, options: o)
    let ranks = group?.size ?? 1
    guard o.batchSize >= ranks else {
      throw PETLError("--batch-size \(o.batchSize) is smaller than the data-parallel group (\(ranks) ranks)")
    }
    let totalSteps = Self.totalSteps(o, examples: data.train.count)
    var restarts: [CellResult.Restart] = []
    var attempt = 0
    while true {
      let seed = o.seed &+ UInt64(attempt) &* Self.restartSeedStride
      let (run, selection) = try train(task: task, data: data, seed: seed, totalSteps: totalSteps, announce: attempt == 0)
      var result = try run.finish()
      result.selection = selection
      if result.status == .ok, let c = result.collapse, c.collapsed, attempt < o.restarts {
        log("collapsed (\(c.reason!)): restart \(attempt + 1) of \(o.restarts) from seed \(o.seed &+ UInt64(attempt + 1) &* Self.restartSeedStride)")
        restarts.append(.init(seed: seed, dev: result.dev, steps: result.steps, chosen: selection?.chosen, collapse: c))
        attempt += 1
        continue
      }
      if let c = result.collapse, c.collapsed { log("collapsed (\(c.reason!)): the study will not count this cell") }
      result.restarts = restarts.isEmpty ? nil : restarts
      result.trainedSeed = attempt == 0 ? nil : seed
      result.wallSeconds = Date().timeIntervalSince(start)
      return Outcome(result: result, model: run.model, trainable: run.trainable)
    }
  }

  /// Steps of a cell on `examples` training examples: the epochs (or `maxSteps`), raised to at least
  /// `minSteps` in whole epochs.
  public static func totalSteps(_ o: TrainOptions, examples n: Int) -> Int {
    let perEpoch = (n + o.batchSize - 1) / o.batchSize
    if let m = o.maxSteps { return m }
    var epochs = o.epochs
    if let min = o.minSteps, perEpoch > 0 { epochs = max(epochs, (min + perEpoch - 1) / perEpoch) }
    return epochs * perEpoch
  }

  /// One attempt: at the given or inherited rate, or searched among the candidates; trained to the end.
  private func train(task: TaskDescriptor, data: TaskData, seed: UInt64, totalSteps: Int,
                     announce: Bool) throws -> (CellRun, LearningRateSelection?) {
    let o = spec.options
    let run: CellRun
    var selection: LearningRateSelection? = nil
    if let from = o.rateFromSeed, let rate = inheritedRate {
      log("lr \(String(format: "%.0e", rate)) as chosen by seed \(from)")
      run = try makeRun(lr: rate, data: data, seed: seed, totalSteps: totalSteps, announce: announce)
      selection = LearningRateSelection(candidates: [], chosen: rate, rungSteps: 0, bounds: o.learningRateBounds,
                                        reusedFromSeed: from)
    } else if let candidates = o.learningRateCandidates, candidates.count > 1 {
      if let from = o.rateFromSeed { log("no rate from seed \(from) (not trained, failed or collapsed): searching") }
      var search = LearningRateSearch(makeRun: { lr, first in
        try makeRun(lr: lr, data: data, seed: seed, totalSteps: totalSteps, announce: announce && first)
      }, task: task, totalSteps: totalSteps, log: log)
      if o.rungPastChance, !task.isRegression {
        let rung = try CellEvaluation(data: data, batchSize: o.batchSize, group: nil).primary(half: true).examples
        search.chanceAccuracy = LearningRateSelection.chanceAccuracy(
          majorityShare: Collapse.share(rung.map { Int($0.label) }, classes: task.numLabels), examples: rung.count)
      }
      (run, selection) = try search.run(candidates, bounds: o.learningRateBounds)
    } else {
      run = try makeRun(lr: o.learningRateCandidates?.first ?? o.learningRate, data: data, seed: seed,
                        totalSteps: totalSteps, announce: announce)
    }
    try run.advance(to: totalSteps)
    return (run, selection)
  }

  /// A fresh model (pretrained weights, the seed's head) with its optimizer, ready to train at `lr`.
  func makeRun(lr: Double, data: TaskData, seed: UInt64, totalSteps: Int, announce: Bool) throws -> CellRun {
    let o = spec.options
    let (model, report) = try context.freshModel(numLabels: data.task.numLabels, seed: seed,
                                                 lora: spec.loraSpec(layerCount: context.config.numHiddenLayers))
    if announce, let msg = report.message { log(msg) }
    if let adapter {
      let names = try AdapterFile.load(adapter, into: model)
      if announce { log("loaded \(names.count) tensors from \(adapter.path)") }
    }
    if let p = o.dropout {
      model.hiddenDropout = Float(p); model.attentionDropout = Float(p); model.classifierDropout = Float(p)
    }
    let trainable = try TrainableSet(modules: spec.modules, layers: spec.layers, layout: model.layout,
                                     randomCount: spec.randomCount, seed: seed, method: o.method)
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
        adapter == nil ? context.prefixCache(data.task, options: o, layer: layer, split: split)
          : PrefixCache(layer: layer, hidden: model.dims.hidden)
      }
      step.prefixCache = cache("train")
      for (split, _) in data.dev { devCaches[split] = cache("dev:" + split) }
    }
    step.workspace.reserve(tokens: o.batchSize * o.maxLength, batch: o.batchSize, maxLength: o.maxLength)
    return CellRun(options: o, seed: seed, data: data, model: model, trainable: trainable, step: step,
                   devCaches: devCaches, group: group, lr: lr, totalSteps: totalSteps,
                   progressInterval: progressInterval, log: log)
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

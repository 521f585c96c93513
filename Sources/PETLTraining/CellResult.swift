import Foundation

/// What training one cell produced: the trainer returns it, the coordinator journals it.
public struct CellResult: Codable, Hashable, Sendable {
  public enum Status: String, Codable, Sendable { case ok, failed }

  /// One evaluation at the end of an epoch (or at the last step when training by `maxSteps`).
  public struct EpochRecord: Codable, Hashable, Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var dev: [String: Double]
    public var seconds: Double

    public init(epoch: Int, trainLoss: Double, dev: [String: Double], seconds: Double) {
      self.epoch = epoch; self.trainLoss = trainLoss; self.dev = dev; self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey {
      case epoch, trainLoss = "train_loss", dev, seconds
    }
  }

  public var status: Status
  /// Why a cell failed, one line, e.g. `diverged: loss is nan at step 12`; nil when ok.
  public var reason: String?
  /// Final dev metrics, e.g. `["accuracy": 0.65]`, `["pearson": 0.8, "spearman": 0.79]`.
  public var dev: [String: Double]
  /// The key of `dev` the study ranks this cell by. Recorded with the result because a user task's
  /// metric lives in its folder's `task.json`, which `report` on a journal never sees; nil in records
  /// written before it was (built-in tasks, whose metric the program knows).
  public var primaryMetric: String?
  public var epochs: [EpochRecord]
  public var trainableParameters: Int
  public var totalParameters: Int
  public var steps: Int
  /// Bytes each rank hands to the gradient all-reduce per optimizer step (0 with one rank).
  public var allreduceBytesPerStep: Int
  public var wallSeconds: Double
  /// Ranks that trained the cell together (the data-parallel group size).
  public var ranks: Int
  /// How the learning rate was chosen, for a cell with learning-rate candidates (nil otherwise).
  public var selection: LearningRateSelection?
  /// Mean |w| of the trainable encoder scalars as pretrained (head excluded; nil for head-only cells).
  public var pretrainedMeanAbs: Double?
  /// How far training moved them: ‖w − w₀‖ / ‖w₀‖ (nil for head-only cells).
  public var moved: Double?
  /// 95% bootstrap interval [low, high] of the primary dev metric over dev examples (`Bootstrap`).
  public var devInterval: [Double]?
  /// The collapse check of the run this result reports (`Collapse`); nil in records written before it.
  public var collapse: Collapse?
  /// Earlier runs of this cell that collapsed and were trained again from another seed, in order.
  public var restarts: [Restart]?
  /// The seed the reported run trained with, when a restart changed it (nil: the spec's seed).
  public var trainedSeed: UInt64?
  /// The primary dev split's predictions and gold labels, for intervals over seeds and examples.
  public var devPredictions: DevPredictions?

  /// True when the reported run collapsed (after every restart): the study never counts its score.
  public var collapsed: Bool { collapse?.collapsed ?? false }

  /// A collapsed run the cell set aside: its seed, where it ended, and the evidence.
  public struct Restart: Codable, Hashable, Sendable {
    public var seed: UInt64
    public var dev: [String: Double]
    public var steps: Int
    public var chosen: Double?
    public var collapse: Collapse

    public init(seed: UInt64, dev: [String: Double], steps: Int, chosen: Double?, collapse: Collapse) {
      self.seed = seed; self.dev = dev; self.steps = steps; self.chosen = chosen; self.collapse = collapse
    }
  }

  public init(status: Status, reason: String? = nil, dev: [String: Double] = [:], epochs: [EpochRecord] = [],
              trainableParameters: Int = 0, totalParameters: Int = 0, steps: Int = 0,
              allreduceBytesPerStep: Int = 0, wallSeconds: Double = 0, ranks: Int = 1) {
    self.status = status; self.reason = reason; self.dev = dev; self.epochs = epochs
    self.trainableParameters = trainableParameters; self.totalParameters = totalParameters
    self.steps = steps; self.allreduceBytesPerStep = allreduceBytesPerStep
    self.wallSeconds = wallSeconds; self.ranks = ranks
  }

  /// A failed cell that produced nothing but its reason (the runner threw).
  public static func failed(reason: String, wallSeconds: Double, ranks: Int) -> CellResult {
    CellResult(status: .failed, reason: reason, wallSeconds: wallSeconds, ranks: ranks)
  }

  enum CodingKeys: String, CodingKey {
    case status, reason, dev, epochs, steps, ranks
    case trainableParameters = "trainable_parameters", totalParameters = "total_parameters"
    case allreduceBytesPerStep = "allreduce_bytes_per_step", wallSeconds = "wall_seconds"
    case selection = "lr_selection", pretrainedMeanAbs = "pretrained_mean_abs", moved, devInterval = "dev_ci95"
    case primaryMetric = "primary_metric", collapse, restarts, trainedSeed = "trained_seed"
    case devPredictions = "dev_predictions"
  }
}

/// Successive halving over learning-rate candidates: what each candidate scored at the rung and which
/// one went on to train the whole cell.
public struct LearningRateSelection: Codable, Hashable, Sendable {
  public struct Candidate: Codable, Hashable, Sendable {
    public var learningRate: Double
    /// Dev metrics and mean dev loss (`loss`) where the candidate stopped, on the first half of the
    /// primary dev split (empty if it diverged before).
    public var dev: [String: Double]
    public var steps: Int
    public var reason: String?

    public init(learningRate: Double, dev: [String: Double], steps: Int, reason: String? = nil) {
      self.learningRate = learningRate; self.dev = dev; self.steps = steps; self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case learningRate = "learning_rate", dev, steps, reason }
  }

  public var candidates: [Candidate]
  public var chosen: Double
  /// The last rung: the step at which the choice was made (each candidate records where it stopped).
  public var rungSteps: Int
  /// The search's hard bounds (`TrainOptions.learningRateBounds`), when it had them.
  public var bounds: [Double]?
  /// Set when the cell did not search but took the rate the cell of this seed chose.
  public var reusedFromSeed: UInt64?

  public init(candidates: [Candidate], chosen: Double, rungSteps: Int, bounds: [Double]? = nil,
              reusedFromSeed: UInt64? = nil) {
    self.candidates = candidates; self.chosen = chosen; self.rungSteps = rungSteps
    self.bounds = bounds; self.reusedFromSeed = reusedFromSeed
  }

  /// Where the chosen rate sits among those tried: between two tried rates (`interior`), at an end
  /// the search could not pass (`atBound`: the next rate would cross the bound), or at an end of a
  /// search without bounds (`atEdge`). nil for a reused rate (its own cell's search says).
  public enum Position: String, Sendable { case interior, atBound = "at the bound", atEdge = "at the edge" }

  public var position: Position? {
    guard reusedFromSeed == nil else { return nil }
    let tried = candidates.map(\.learningRate).sorted()
    guard let lo = tried.first, let hi = tried.last else { return nil }
    if chosen > lo && chosen < hi { return .interior }
    guard let bounds, bounds.count == 2, tried.count >= 2 else { return .atEdge }
    let step = chosen == lo ? tried[1] / tried[0] : tried[tried.count - 1] / tried[tried.count - 2]
    let next = chosen == lo ? chosen / step : chosen * step
    return SearchRungs.within(next, bounds) ? .atEdge : .atBound
  }

  /// True when no candidate's accuracy where it stopped lies above the 95% band of always predicting
  /// the majority class on the `examples` the rungs score (`chanceAccuracy`; a score below the band
  /// is no sign of learning either): the rungs could not tell any candidate from chance, so the rate
  /// the search kept was chosen among scores chance could give, not shown to be an optimum (the report
  /// says so). False for a reused rate (its own cell's search says), or when no candidate recorded an
  /// accuracy (regression).
  public func atChance(majorityShare p: Double, examples m: Int) -> Bool {
    guard reusedFromSeed == nil, let limit = Self.chanceAccuracy(majorityShare: p, examples: m) else { return false }
    let accuracies = candidates.compactMap { $0.dev["accuracy"] }
    return !accuracies.isEmpty && accuracies.allSatisfy { $0 <= limit }
  }

  /// `atChance` on the examples the rungs scored: the first half of the cell's recorded dev labels
  /// (`CellEvaluation.rungExamples`). False without recorded class labels (regression, old records).
  public func atChance(devPredictions: DevPredictions?) -> Bool {
    guard let gold = devPredictions?.classes?.gold, !gold.isEmpty else { return false }
    let half = gold.prefix(CellEvaluation.rungExamples(gold.count))
    return atChance(majorityShare: Collapse.share(Array(half), classes: (half.max() ?? 0) + 1), examples: half.count)
  }

  /// The top of the 95% band of accuracies that always predicting the majority class (share p) gives
  /// on m examples: p + 1.96·√(p(1−p)/m). An accuracy at or below it cannot be told from chance.
  /// nil when there is no band (no examples, or one class only).
  public static func chanceAccuracy(majorityShare p: Double, examples m: Int) -> Double? {
    guard m > 0, p > 0, p < 1 else { return nil }
    return p + 1.96 * (p * (1 - p) / Double(m)).squareRoot()
  }

  /// A cell with `k` candidates trains this many plain cells' steps (1.28 for three): every
  /// candidate to the first rung, the kept ones to the next, one to the end (from `rungs` on a
  /// cell long enough that the integer steps are exact fractions).
  public static func costFactor(candidates k: Int) -> Double {
    guard k > 1 else { return 1 }
    let total = 600_000  // a multiple of 60: every rung fraction is a whole number of steps
    var steps = 0, alive = k, previous = 0
    for rung in SearchRungs.rungs(totalSteps: total, candidates: k) {
      steps += alive * (rung.steps - previous); alive = rung.keep; previous = rung.steps
    }
    return Double(steps + total - previous) / Double(total)
  }

  enum CodingKeys: String, CodingKey {
    case candidates, chosen, rungSteps = "rung_steps", bounds, reusedFromSeed = "reused_from_seed"
  }
}

/// A cell that failed by itself (diverged: non-finite loss, gradients or outputs): the grid journals
/// it as `failed` and goes on, as opposed to an error that must end the job.
public struct CellFailure: Error, Sendable {
  public let reason: String
  public init(_ reason: String) { self.reason = reason }
}

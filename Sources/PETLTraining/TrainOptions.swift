import PETLKernels

/// How a cell's modules train: their own weights (`module`, every cell before LoRA existed) or
/// through low-rank adapters beside their frozen weights (`lora`, PEFT's `LoraConfig`; docs/lora.md).
public enum TuningMethod: String, Codable, Sendable, CaseIterable { case module, lora }

/// Everything that decides how one cell trains, apart from what is trainable. Codable so a grid cell's
/// spec (and its hash) carries it whole: two cells with different options are different cells.
public struct TrainOptions: Codable, Hashable, Sendable {
  public enum Optimizer: String, Codable, Sendable, CaseIterable { case adamw, sgd }

  /// Passes over the training set; ignored when `maxSteps` is set.
  public var epochs: Int = 3
  /// Optimizer steps in all; evaluation still happens at each epoch end and at the last step.
  public var maxSteps: Int? = nil
  public var learningRate: Double = 1e-3
  /// Learning rates to choose from on dev by successive halving (`LearningRateSelection`); when set,
  /// `learningRate` is 0 and the chosen rate is in the cell's result.
  public var learningRateCandidates: [Double]? = nil
  public var batchSize: Int = 32
  public var maxLength: Int = 128
  public var optimizer: Optimizer = .adamw
  public var weightDecay: Double = 0.01
  public var warmupRatio: Double = 0.06
  public var maxGradNorm: Double = 1.0
  /// Overrides the checkpoint's hidden and attention dropout; nil keeps the config's values.
  public var dropout: Double? = nil
  public var shuffle: Bool = true
  /// Use only the first N training examples (after reading, before shuffling).
  public var maxTrain: Int? = nil
  /// Evaluate on at most N dev examples (nil: all).
  public var maxEval: Int? = nil
  public var seed: UInt64 = 1
  /// Frozen-prefix cache: the layers below the lowest trainable one run without dropout and their
  /// output is computed once per example (see PrefixCache).
  public var prefixCache: Bool = false
  /// Length bucketing: batches drawn from pools of this many batches sorted by length (nil: off).
  /// See `BatchOrder`.
  public var lengthBuckets: Int? = nil
  /// At least this many optimizer steps, in whole epochs: a small task gets more epochs (nil: the
  /// epochs as given). Few-sample fine-tuning collapses without enough updates (Mosbach et al.,
  /// Zhang et al., ICLR 2021).
  public var minSteps: Int? = nil
  /// The learning-rate search's hard bounds [lowest, highest]: a candidate chosen at an end of the
  /// ladder is challenged by the next rate beyond it, up to these (`LearningRateSearch`). nil: the
  /// candidates as given.
  public var learningRateBounds: [Double]? = nil
  /// Train at the rate the cell of this seed (same task, set and layers) chose, instead of searching
  /// again: the grid hands that rate over (`PlannedCell.parent`). A cell run without it searches.
  public var rateFromSeed: UInt64? = nil
  /// The search's last rung also moves later while no candidate there scores above chance, up to
  /// half the cell (`LearningRateSearch`). The grid and `train` set it whenever they search. Part of
  /// the spec, so a cell searched under the older rule keeps its hash and meaning, and a study resumed
  /// on an old journal searches its cells again instead of crediting the old ones.
  public var rungPastChance: Bool = false
  /// How many times a collapsed run (`Collapse`) is trained again from a fresh seed before the cell is
  /// recorded as collapsed (0: detected and recorded, never rerun).
  public var restarts: Int = 0
  /// The precision of the GEMMs (`Precision`): part of a cell's identity, so bf16 and fp32 results
  /// are different cells (and, through `CellInputs`, never pooled by `report`).
  public var precision: Precision = .fp32
  public var method: TuningMethod = .module
  /// LoRA's rank R, alpha (the update is scaled by alpha/R) and dropout on the adapter's input;
  /// PEFT's defaults. Part of a cell's identity only with `method` lora.
  public var loraRank: Int = 8
  public var loraAlpha: Double = 8
  public var loraDropout: Double = 0

  public init() {}

  enum CodingKeys: String, CodingKey {
    case epochs, maxSteps, learningRate, batchSize, maxLength, optimizer, weightDecay, warmupRatio, maxGradNorm
    case dropout, shuffle, maxTrain, maxEval, seed, prefixCache, lengthBuckets, learningRateCandidates
    case minSteps, learningRateBounds, rateFromSeed, rungPastChance, restarts, precision
    case method, loraRank, loraAlpha, loraDropout
  }

  /// Missing keys keep their defaults, so journals written before an option existed still read (and
  /// a cell that never used the option keeps meaning what it meant).
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    let d = TrainOptions()
    epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
    maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps)
    learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate) ?? d.learningRate
    batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
    maxLength = try c.decodeIfPresent(Int.self, forKey: .maxLength) ?? d.maxLength
    optimizer = try c.decodeIfPresent(Optimizer.self, forKey: .optimizer) ?? d.optimizer
    weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? d.weightDecay
    warmupRatio = try c.decodeIfPresent(Double.self, forKey: .warmupRatio) ?? d.warmupRatio
    maxGradNorm = try c.decodeIfPresent(Double.self, forKey: .maxGradNorm) ?? d.maxGradNorm
    dropout = try c.decodeIfPresent(Double.self, forKey: .dropout)
    shuffle = try c.decodeIfPresent(Bool.self, forKey: .shuffle) ?? d.shuffle
    maxTrain = try c.decodeIfPresent(Int.self, forKey: .maxTrain)
    maxEval = try c.decodeIfPresent(Int.self, forKey: .maxEval)
    seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
    prefixCache = try c.decodeIfPresent(Bool.self, forKey: .prefixCache) ?? d.prefixCache
    lengthBuckets = try c.decodeIfPresent(Int.self, forKey: .lengthBuckets)
    learningRateCandidates = try c.decodeIfPresent([Double].self, forKey: .learningRateCandidates)
    minSteps = try c.decodeIfPresent(Int.self, forKey: .minSteps)
    learningRateBounds = try c.decodeIfPresent([Double].self, forKey: .learningRateBounds)
    rateFromSeed = try c.decodeIfPresent(UInt64.self, forKey: .rateFromSeed)
    rungPastChance = try c.decodeIfPresent(Bool.self, forKey: .rungPastChance) ?? d.rungPastChance
    restarts = try c.decodeIfPresent(Int.self, forKey: .restarts) ?? d.restarts
    precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? d.precision
    method = try c.decodeIfPresent(TuningMethod.self, forKey: .method) ?? d.method
    loraRank = try c.decodeIfPresent(Int.self, forKey: .loraRank) ?? d.loraRank
    loraAlpha = try c.decodeIfPresent(Double.self, forKey: .loraAlpha) ?? d.loraAlpha
    loraDropout = try c.decodeIfPresent(Double.self, forKey: .loraDropout) ?? d.loraDropout
  }

  /// Options added after the first journals are written only when set, so the spec hash of a cell
  /// that does not use them stays what it was.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(epochs, forKey: .epochs)
    try c.encodeIfPresent(maxSteps, forKey: .maxSteps)
    try c.encode(learningRate, forKey: .learningRate)
    try c.encode(batchSize, forKey: .batchSize)
    try c.encode(maxLength, forKey: .maxLength)
    try c.encode(optimizer, forKey: .optimizer)
    try c.encode(weightDecay, forKey: .weightDecay)
    try c.encode(warmupRatio, forKey: .warmupRatio)
    try c.encode(maxGradNorm, forKey: .maxGradNorm)
    try c.encodeIfPresent(dropout, forKey: .dropout)
    try c.encode(shuffle, forKey: .shuffle)
    try c.encodeIfPresent(maxTrain, forKey: .maxTrain)
    try c.encodeIfPresent(maxEval, forKey: .maxEval)
    try c.encode(seed, forKey: .seed)
    if prefixCache { try c.encode(true, forKey: .prefixCache) }
    try c.encodeIfPresent(lengthBuckets, forKey: .lengthBuckets)
    try c.encodeIfPresent(learningRateCandidates, forKey: .learningRateCandidates)
    try c.encodeIfPresent(minSteps, forKey: .minSteps)
    try c.encodeIfPresent(learningRateBounds, forKey: .learningRateBounds)
    try c.encodeIfPresent(rateFromSeed, forKey: .rateFromSeed)
    if rungPastChance { try c.encode(true, forKey: .rungPastChance) }
    if restarts != 0 { try c.encode(restarts, forKey: .restarts) }
    if precision != .fp32 { try c.encode(precision, forKey: .precision) }
    if method == .lora {
      try c.encode(method, forKey: .method)
      try c.encode(loraRank, forKey: .loraRank)
      try c.encode(loraAlpha, forKey: .loraAlpha)
      try c.encode(loraDropout, forKey: .loraDropout)
    }
  }
}

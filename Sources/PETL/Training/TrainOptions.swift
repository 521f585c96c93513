/// Everything that decides how one cell trains, apart from what is trainable. Codable so a grid cell's
/// spec (and its hash) carries it whole: two cells with different options are different cells.
public struct TrainOptions: Codable, Hashable, Sendable {
  public enum Optimizer: String, Codable, Sendable, CaseIterable { case adamw, sgd }

  /// Passes over the training set; ignored when `maxSteps` is set.
  public var epochs: Int = 3
  /// Optimizer steps in all; evaluation still happens at each epoch end and at the last step.
  public var maxSteps: Int? = nil
  public var learningRate: Double = 1e-3
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

  public init() {}
}

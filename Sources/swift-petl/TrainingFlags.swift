import ArgumentParser
import Foundation
import PETL

/// Where the model and data are: shared by every command that trains or predicts.
struct LocationFlags: ParsableArguments {
  @Option(help: "HuggingFace BERT folder (config.json, vocab.txt, model.safetensors).")
  var model: String = "models/all-MiniLM-L6-v2"

  @Option(help: "Folder in glue_data layout (CoLA/, SST-2/, ...; rt-vader/ for the embedded default).")
  var dataDir: String = "data"

  var modelURL: URL { URL(fileURLWithPath: model) }
  var dataURL: URL { URL(fileURLWithPath: dataDir) }
}

/// How a cell trains (everything but the trainable set, seed and learning rate): `train` and `grid`
/// take the same flags and fill the same `TrainOptions`.
struct TrainingFlags: ParsableArguments {
  @Option(help: "Passes over the training set.") var epochs: Int = 3
  @Option(help: "Train this many optimizer steps instead of whole epochs.") var maxSteps: Int?
  @Option(help: "Global batch size (split over a data-parallel group).") var batchSize: Int = 32
  @Option(help: "Truncate encodings to this many tokens.") var maxLength: Int = 128
  @Option(help: "adamw or sgd.") var optimizer: String = "adamw"
  @Option(help: "AdamW decoupled weight decay (never on LayerNorm or biases).") var weightDecay: Double = 0.01
  @Option(help: "Fraction of steps with linear warmup; then linear decay to 0.") var warmupRatio: Double = 0.06
  @Option(help: "Clip the gradient norm of the trainable set to this (0: no clipping).") var maxGradNorm: Double = 1.0
  @Option(help: "Override the config's dropout probabilities (0 turns dropout off).") var dropout: Double?
  @Flag(help: "Train in file order instead of a seeded shuffle.") var noShuffle = false
  @Option(help: "Use only the first N training examples.") var maxTrain: Int?
  @Option(help: "Evaluate on at most N dev examples.") var maxEval: Int?

  func options(seed: UInt64, learningRate: Double) throws -> TrainOptions {
    guard let opt = TrainOptions.Optimizer(rawValue: optimizer) else {
      throw ValidationError("--optimizer must be adamw or sgd, got '\(optimizer)'")
    }
    guard epochs > 0 || (maxSteps ?? 0) > 0 else { throw ValidationError("--epochs must be positive") }
    if let s = maxSteps, s <= 0 { throw ValidationError("--max-steps must be positive") }
    guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
    guard maxLength >= 3 && maxLength <= 512 else { throw ValidationError("--max-length must be in 3...512") }
    guard warmupRatio >= 0 && warmupRatio <= 1 else { throw ValidationError("--warmup-ratio must be in [0, 1]") }
    if let d = dropout, !(d >= 0 && d < 1) { throw ValidationError("--dropout must be in [0, 1)") }
    if let n = maxTrain, n <= 0 { throw ValidationError("--max-train must be positive") }
    if let n = maxEval, n <= 0 { throw ValidationError("--max-eval must be positive") }
    guard learningRate > 0 && learningRate.isFinite else { throw ValidationError("--lr must be positive") }
    var o = TrainOptions()
    o.epochs = epochs; o.maxSteps = maxSteps; o.learningRate = learningRate; o.batchSize = batchSize
    o.maxLength = maxLength; o.optimizer = opt; o.weightDecay = weightDecay; o.warmupRatio = warmupRatio
    o.maxGradNorm = maxGradNorm; o.dropout = dropout; o.shuffle = !noShuffle; o.maxTrain = maxTrain
    o.maxEval = maxEval; o.seed = seed
    return o
  }
}

/// Splits `a,b,c` flags.
func commaList(_ s: String) -> [String] {
  s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// Writes JSON (sorted keys, pretty) atomically enough for a result file.
func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
  let enc = JSONEncoder()
  enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
  do { try enc.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
    throw PETLError("\(path): cannot write (\(error.localizedDescription))")
  }
}

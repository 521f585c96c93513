import ArgumentParser
import Foundation
import PETLModel
import PETLTraining
import PETLSupport

/// The model folder: every command that loads the model takes it.
struct ModelFlag: ParsableArguments {
  @Option(help: "HuggingFace encoder folder: config.json, model.safetensors, and vocab.txt (BERT, ELECTRA, DistilBERT) or vocab.json + merges.txt (RoBERTa).")
  var model: String = "models/all-MiniLM-L6-v2"

  var url: URL { URL(fileURLWithPath: model) }
  var configURL: URL { url.appendingPathComponent("config.json") }
  func config() throws -> EncoderConfig { try EncoderConfig.load(configURL) }
}

/// Where the model and data are: shared by every command that trains or predicts.
struct LocationFlags: ParsableArguments {
  @OptionGroup var modelFlag: ModelFlag

  @Option(help: "Folder in glue_data layout (CoLA/, SST-2/, ...; rt-vader/ for the embedded default).")
  var dataDir: String = "data"

  var model: String { modelFlag.model }
  var modelURL: URL { modelFlag.url }
  var dataURL: URL { URL(fileURLWithPath: dataDir) }
}

/// `--precision`: the GEMMs' precision, for every command that runs the model.
struct PrecisionFlag: ParsableArguments {
  @Option(help: ArgumentHelp("fp32, bf16 or auto (default fp32).",
                             discussion: "bf16 is PyTorch's CPU autocast: every matrix product reads bf16 operands and accumulates in fp32 on oneDNN; LayerNorm, softmax, GELU, the loss, gradients and optimizer state stay fp32 (docs/precision.md). It needs bf16 dot-product instructions (AVX512_BF16 or AMX-BF16). auto picks bf16 when every rank's CPU has them, else fp32, and prints why.")) var precision: PrecisionRequest = .fp32

  /// This process's choice; printed unless fp32 was asked for (the default prints nothing new).
  func choice(print say: Bool = true) throws -> PrecisionChoice {
    let c = try PrecisionChoice.local(precision)
    if say && precision != .fp32 { print("precision: \(c.why)") }
    return c
  }
}

extension PrecisionRequest: ExpressibleByArgument {}

/// How a cell trains (everything but the trainable set, seed and learning rate): `train` and `grid`
/// take the same flags. Each flag left out keeps the base value (TrainOptions' defaults for `train`,
/// the preset's for `grid`), so a preset can be adjusted one flag at a time.
struct TrainingFlags: ParsableArguments {
  @Option(help: "Passes over the training set (default 3).") var epochs: Int?
  @Option(help: "Train this many optimizer steps instead of whole epochs.") var maxSteps: Int?
  @Option(help: "Global batch size, split over a data-parallel group (default 32).") var batchSize: Int?
  @Option(help: "Truncate encodings to this many tokens, at most the model's max_position_embeddings (default 128).") var maxLength: Int?
  @Option(help: "adamw or sgd (default adamw).") var optimizer: TrainOptions.Optimizer?
  @Option(help: "AdamW decoupled weight decay, never on LayerNorm or biases (default 0.01).") var weightDecay: Double?
  @Option(help: "Fraction of steps with linear warmup, then linear decay to 0 (default 0.06).") var warmupRatio: Double?
  @Option(help: "Clip the trainable set's gradient norm to this; 0 = no clipping (default 1).") var maxGradNorm: Double?
  @Option(help: "Override the config's dropout probabilities; 0 turns dropout off.") var dropout: Double?
  @Flag(help: "Train in file order instead of a seeded shuffle.") var noShuffle = false
  @Option(help: ArgumentHelp("Length bucketing: draw batches from pools of K batches' worth of shuffled examples sorted by length.",
                             discussion: "Batches then hold similar lengths; every example is still seen once per epoch, and training is the same in expectation (not bit for bit). Off by default, as in the paper.",
                             valueName: "K")) var lengthBuckets: Int?
  @Option(help: "Use only the first N training examples.") var maxTrain: Int?
  @Option(help: "Train at least N steps, in whole epochs (a small task gets more epochs).") var minSteps: Int?
  @Option(help: "A collapsed run (dev predictions almost all one class, or training loss never below chance) is trained again from a fresh seed up to K times.") var restarts: Int?
  @Option(help: "LOW,HIGH: hard bounds of the learning-rate search; a rate chosen at an end of the candidates is challenged by the next one beyond it, up to these.") var lrBounds: String?
  @Option(help: "Evaluate on at most N dev examples.") var maxEval: Int?
  @Option(help: ArgumentHelp("module or lora (default module).",
                             discussion: "module trains the chosen modules' own weights; lora freezes them and trains PEFT-style low-rank adapters beside them (query, key, value, attn_out, intermediate, output only; docs/lora.md).")) var method: TuningMethod?
  @Option(help: "LoRA rank R (with --method lora; default 8).") var loraRank: Int?
  @Option(help: "LoRA alpha: the update is scaled by alpha/R (with --method lora; default 8).") var loraAlpha: Double?
  @Option(help: "Dropout on the LoRA adapters' input (with --method lora; default 0).") var loraDropout: Double?
  @OptionGroup var precisionFlag: PrecisionFlag
  @Flag(inversion: .prefixedNo, help: ArgumentHelp("Frozen-prefix cache: compute the layers below the lowest trainable one once per example.",
                           discussion: "The frozen prefix then runs WITHOUT dropout (always, first epoch included); trainable layers keep theirs. Training and dev examples are cached (dev evaluation has no dropout, so its cache is exact), each bounded at 1 GiB per task, layer and split per rank; examples beyond it are recomputed. Default: on in the quick preset, off otherwise.")) var prefixCache: Bool?

  /// `base` with every given flag applied, validated (`TrainOptions.validate`).
  func apply(to base: TrainOptions) throws -> TrainOptions {
    var o = base
    if let v = epochs { o.epochs = v }
    if let v = maxSteps { o.maxSteps = v }
    if let v = minSteps { o.minSteps = v }
    if let v = batchSize { o.batchSize = v }
    if let v = maxLength { o.maxLength = v }
    if let v = optimizer { o.optimizer = v }
    if let v = weightDecay { o.weightDecay = v }
    if let v = warmupRatio { o.warmupRatio = v }
    if let v = maxGradNorm { o.maxGradNorm = v }
    if let v = dropout { o.dropout = v }
    if noShuffle { o.shuffle = false }
    if let v = prefixCache { o.prefixCache = v }
    if let v = lengthBuckets { o.lengthBuckets = v }
    if let v = maxTrain { o.maxTrain = v }
    if let v = maxEval { o.maxEval = v }
    if let v = restarts { o.restarts = v }
    if let v = method { o.method = v }
    if let v = loraRank { o.loraRank = v }
    if let v = loraAlpha { o.loraAlpha = v }
    if let v = loraDropout { o.loraDropout = v }
    if o.method != .lora, let flag = [(loraRank != nil, "--lora-rank"), (loraAlpha != nil, "--lora-alpha"),
                                      (loraDropout != nil, "--lora-dropout")].first(where: { $0.0 })?.1 {
      throw ValidationError("\(flag): only with --method lora")
    }
    if let v = lrBounds {
      let parts = commaList(v).map(Double.init)
      guard parts.count == 2, let lo = parts[0], let hi = parts[1] else {
        throw ValidationError("--lr-bounds '\(v)': expected LOW,HIGH, e.g. 1e-4,0.1")
      }
      o.learningRateBounds = [lo, hi]
    }
    do { try o.validate() } catch let e as PETLError { throw ValidationError(e.message) }
    return o
  }
}

/// Splits `a,b,c` flags.
func commaList(_ s: String) -> [String] {
  s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// Writes JSON (sorted keys, pretty) atomically enough for a result file.
func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
  do { try RecordCodec.prettyEncoder.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
    throw PETLError("\(path): cannot write (\(error.localizedDescription))")
  }
}

extension TrainOptions.Optimizer: ExpressibleByArgument {}
extension TuningMethod: ExpressibleByArgument {}

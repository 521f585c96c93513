import Foundation
import PETLKernels
import PETLModel
import PETLText
import PETLData
import PETLSupport

/// One tokenized example.
public struct EncodedExample: Sendable {
  public var ids: [Int32]
  public var types: [Int32]
  public var label: Float
}

/// A task's training set and dev split(s), tokenized once. A grid runs many cells on the same task,
/// so ranks keep this in a cache keyed by what changes it.
public struct TaskData: Sendable {
  public let task: TaskDescriptor
  public let train: [EncodedExample]
  /// (split name, examples) for each dev split: one for most tasks, two for MNLI.
  public let dev: [(split: String, examples: [EncodedExample])]

  public init(task: TaskDescriptor, dataDir: URL, tokenizer: any Tokenizer, maxLength: Int,
              maxTrain: Int? = nil, maxEval: Int? = nil) throws {
    func encode(_ xs: [Example]) -> [EncodedExample] { Self.encode(xs, tokenizer: tokenizer, maxLength: maxLength) }
    // The encoder's preconditions, unchecked in the release build.
    guard maxLength >= tokenizer.specialTokenCount(pair: task.isPair) else {
      throw PETLError("--max-length \(maxLength): too short for the special tokens of task \(task.name)")
    }
    var train = try loadExamples(task: task, dataDir: dataDir, split: "train")
    if let n = maxTrain { train = Array(train.prefix(n)) }
    guard !train.isEmpty else { throw PETLError("\(task.name): the training split is empty") }
    self.task = task
    self.train = encode(train)
    self.dev = try task.devSplits.map { split in
      var d = try loadExamples(task: task, dataDir: dataDir, split: split)
      if let n = maxEval { d = Array(d.prefix(n)) }
      return (split, encode(d))
    }
  }

  /// Tokenizes examples as the task feeds them to the model (single sentence or pair).
  public static func encode(_ xs: [Example], tokenizer: any Tokenizer, maxLength: Int) -> [EncodedExample] {
    xs.map { e in
      let enc = tokenizer.encode(e.textA, e.textB, maxLength: maxLength)
      return EncodedExample(ids: enc.inputIds, types: enc.tokenTypeIds, label: e.label)
    }
  }

  /// Packs examples `indices` into a batch; their positions in `train` (or the dev split) are the
  /// global example ids that key dropout.
  /// Rank `rank`'s contiguous share of a global batch under data parallelism: split where the
  /// running token count crosses rank/ranks of the total, so every rank gets about the same number
  /// of TOKENS (packed batches cost by tokens, and the all-reduce waits for the slowest rank), at
  /// least one example each (the batch has at least `ranks`). The shares add up to the global batch
  /// whatever the split, so the summed gradient is the same up to float rounding.
  public static func share(_ examples: [EncodedExample], of global: ArraySlice<Int>, rank: Int, ranks: Int) -> ArraySlice<Int> {
    guard ranks > 1 else { return global }
    var total = 0
    for i in global { total += examples[i].ids.count }
    func bound(_ r: Int) -> Int {
      if r <= 0 { return global.startIndex }
      if r >= ranks { return global.endIndex }
      let target = total * r / ranks
      var before = 0, k = global.startIndex
      while k < global.endIndex && before + examples[global[k]].ids.count / 2 <= target {
        before += examples[global[k]].ids.count; k += 1
      }
      // at least one example for each rank on either side of the bound
      return min(max(k, global.startIndex + r), global.endIndex - (ranks - r))
    }
    var lo = bound(rank), hi = bound(rank + 1)
    if global.count < ranks { lo = min(global.startIndex + rank, global.endIndex); hi = min(lo + 1, global.endIndex) }
    return global[lo..<max(lo, hi)]
  }

  public static func batch(_ examples: [EncodedExample], indices: ArraySlice<Int>) -> Batch {
    Batch(sequences: indices.map { (examples[$0].ids, examples[$0].types) },
          labels: indices.map { examples[$0].label }, exampleIds: indices.map { UInt64($0) })
  }
}

/// Caches what every cell of a grid on this rank reuses: the tokenizer, tokenized task data, and
/// the pretrained weights (a cell starts from a copy of the slab instead of re-reading the file).
public final class StudyContext {
  public let modelDirectory: URL
  public let dataDirectory: URL
  public let tokenizer: any Tokenizer
  public let config: EncoderConfig
  /// The tasks cells may name: the built-in ones and the user's, resolved from the run's flags.
  public let tasks: TaskCatalog
  /// `config.json`'s path, for the messages of checks against it.
  public var configPath: String { modelDirectory.appendingPathComponent("config.json").path }
  private var dataCache: [String: TaskData] = [:]
  private var baseWeights: [Int: (EncoderModel, EncoderModel.LoadReport)] = [:]
  private var prefixCaches: [String: PrefixCache] = [:]

  /// `config`: the model folder's `config.json` when the caller has read it already.
  public init(modelDirectory: URL, dataDirectory: URL, config known: EncoderConfig? = nil,
              tasks: TaskCatalog = TaskCatalog()) throws {
    self.modelDirectory = modelDirectory
    self.dataDirectory = dataDirectory
    self.tasks = tasks
    self.config = try known ?? EncoderConfig.load(modelDirectory.appendingPathComponent("config.json"))
    self.tokenizer = try loadTokenizer(modelDirectory: modelDirectory, config: config)
  }

  public var modelName: String { modelDirectory.standardizedFileURL.lastPathComponent }

  /// What makes two cells' tokenized data (and so their frozen-prefix states) the same.
  package static func dataKey(task: String, _ options: TrainOptions) -> String {
    "\(task)|\(options.maxLength)|\(options.maxTrain ?? -1)|\(options.maxEval ?? -1)"
  }

  /// The frozen-prefix cache of a task's training set (or of a dev split: `split` "dev:NAME") at
  /// `layer`, shared by every cell of this rank (of one precision) whose lowest trainable layer is `layer` (their frozen
  /// prefixes are the same pretrained weights). Splits have their own caches: example ids are per split.
  public func prefixCache(_ task: TaskDescriptor, options: TrainOptions, layer: Int, split: String = "train") -> PrefixCache {
    let key = Self.dataKey(task: task.name, options) + "|\(layer)|\(split)|\(options.precision)"
    if let c = prefixCaches[key] { return c }
    let c = PrefixCache(layer: layer, hidden: config.hiddenSize)
    prefixCaches[key] = c
    return c
  }

  /// The task's data, tokenized for `options`; first refuses a task or `--max-length` the model's
  /// tables cannot hold (see `EncoderConfig.checkInputs`), before anything is read.
  public func data(_ task: TaskDescriptor, options: TrainOptions) throws -> TaskData {
    try config.checkInputs(task: task, maxLength: options.maxLength, configPath: configPath)
    let key = Self.dataKey(task: task.name, options)
    if let d = dataCache[key] { return d }
    let d = try TaskData(task: task, dataDir: dataDirectory, tokenizer: tokenizer, maxLength: options.maxLength,
                         maxTrain: options.maxTrain, maxEval: options.maxEval)
    dataCache[key] = d
    return d
  }

  /// The checkpoint checked against the config for a head of `numLabels`, without loading it
  /// (`CheckpointPlan`): a bad file fails before the first cell. Returns its load summary (tensors
  /// not used, parameters missing), for the caller to print once.
  public func checkCheckpoint(numLabels: Int) throws -> String? {
    try CheckpointPlan(directory: modelDirectory, config: config, dims: ModelDims(config: config, numLabels: numLabels)).summary
  }

  /// A fresh model with the pretrained weights and a head of `numLabels` initialised from `seed`
  /// (so every cell of the same seed starts from the same head), and `lora`'s adapters (nil: none)
  /// drawn from `seed` as PEFT draws them (`EncoderModel.initializeLoRA`).
  public func freshModel(numLabels: Int, seed: UInt64, lora: LoRASpec? = nil) throws -> (EncoderModel, EncoderModel.LoadReport) {
    let base: (EncoderModel, EncoderModel.LoadReport)
    if let b = baseWeights[numLabels] { base = b } else {
      base = try EncoderModel.load(directory: modelDirectory, config: config, numLabels: numLabels, seed: 0)
      baseWeights[numLabels] = base
    }
    let (b, report) = base
    let m = EncoderModel(layout: ParameterLayout(dims: b.dims, lora: lora), hiddenDropout: b.hiddenDropout,
                         attentionDropout: b.attentionDropout, classifierDropout: b.classifierDropout)
    m.params.update(from: b.params, count: b.layout.count)
    if lora != nil { m.initializeLoRA(seed: seed) }
    var r = report
    r.seed = seed
    let fresh = m.layout.slots.filter { s in r.initialized.contains(m.layout.modulePath(of: s)) }
    m.initialize(slots: fresh, seed: seed)
    return (m, r)
  }
}

extension EncoderConfig {
  /// Everything a task's encodings index that this model must hold: token type 1 for a pair task, and
  /// `maxLength` positions (at least the special tokens). The vocabulary is checked when the tokenizer
  /// loads (`loadTokenizer(modelDirectory:config:)`). `train` and `grid` get this through
  /// `StudyContext.data`, `predict` calls it itself.
  public func checkInputs(task: TaskDescriptor, maxLength: Int, configPath: String, flag: String = "--max-length") throws {
    try checkTokenTypes(pairs: task.isPair, task: task.name, configPath: configPath)
    try checkMaxLength(maxLength, pairs: task.isPair, configPath: configPath, flag: flag)
  }
}

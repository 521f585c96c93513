import ArgumentParser
import Foundation
import PETLModel
import PETLData
import PETLTraining
import PETLStudy

/// `swift-petl train`: fine-tune one cell alone, for debugging a cell or a single result.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Fine-tune one cell: a task with one trainable set (module types in all or chosen layers).",
    discussion: """
      Trainable sets (--modules, comma-separated): \(TrainableModule.allCases.map(\.rawValue).joined(separator: " ")).
      The classifier head always trains; the pooler only with 'pooler' or 'full'. --layers all is
      module-wise; --layers 3 or 3,4 trains those layers only (one cell).
      """)

  @OptionGroup var location: LocationFlags
  @Option(help: "GLUE task (cola sst2 mrpc stsb qqp mnli qnli rte wnli), rt-vader, or the path of a folder of your own task (train and dev files; docs/tasks.md).") var task: String
  @Option(help: "Trainable set(s), comma-separated.") var modules: String = "full"
  @Option(help: "all, or comma-separated 0-based layer indices.") var layers: String = "all"
  @Option(help: "For --modules random: how many scalars to train.") var randomCount: Int?
  @Option(help: "Peak learning rate (default per module family).") var lr: Double?
  @Option(help: "Learning rates, comma-separated: one is --lr; several are candidates, chosen on dev by successive halving (as grid --lr-selection halving).") var lrs: String?
  @Option(help: "Seed: head initialisation, shuffling, dropout.") var seed: UInt64 = 1
  @OptionGroup var training: TrainingFlags
  @Option(help: "Safetensors file loaded over the pretrained weights before training.") var adapter: String?
  @Option(help: "Save the trainable parameters (with the head) to this safetensors file.") var saveAdapter: String?
  @Option(help: "Write the result as JSON here.") var output: String?
  @Flag(help: "No progress or epoch lines while training.") var quiet = false
  @Option(help: "Seconds between progress lines.") var progressEvery: Double = 30

  func run() throws {
    let mods = try commaList(modules).map { try TrainableModule(parsing: $0) }
    var options = try training.apply(to: TrainOptions())
    options.precision = try training.precisionFlag.choice().precision
    options.seed = seed
    options.learningRate = lr ?? defaultLearningRate(modules: mods)
    guard options.learningRate > 0 && options.learningRate.isFinite else { throw ValidationError("--lr must be positive") }
    if let lrs {
      guard lr == nil else { throw ValidationError("--lr and --lrs: give one of them") }
      let rates = try commaList(lrs).map { v -> Double in
        guard let x = Double(v), x > 0, x.isFinite else { throw ValidationError("--lrs: '\(v)' is not a positive number") }
        return x
      }
      guard !rates.isEmpty, Set(rates).count == rates.count else { throw ValidationError("--lrs: give distinct positive rates") }
      if rates.count == 1 { options.learningRate = rates[0] } else {
        options.learningRate = 0; options.learningRateCandidates = rates.sorted(); options.rungPastChance = true
      }
    }
    var catalog = TaskCatalog()
    let resolved = try catalog.resolve(task, flag: "--task")
    let spec = CellSpec(task: resolved.name, modules: mods, layers: try LayerSelection.parse(layers), randomCount: randomCount,
                        model: URL(fileURLWithPath: location.model).lastPathComponent,
                        options: options)
    let context = try StudyContext(modelDirectory: location.modelURL, dataDirectory: location.dataURL, tasks: catalog)
    // a set LoRA cannot adapt, LoRA in bf16: one error line before any data is read
    try spec.options.validate()
    _ = try spec.trainableSet(dims: ModelDims(config: context.config, numLabels: resolved.numLabels))
    guard progressEvery > 0 && progressEvery.isFinite else { throw ValidationError("--progress-every must be a positive number of seconds") }
    var trainer = CellTrainer(spec: spec, context: context, adapter: adapter.map { URL(fileURLWithPath: $0) },
                              log: quiet ? { _ in } : { print($0); fflush(stdout) })
    trainer.progressInterval = progressEvery
    print("cell: \(spec.label)  [\(spec.hash)]")
    if let about = resolved.about { print(about) }
    let data = try context.data(resolved, options: spec.options)
    print("data: \(data.train.count) train, " + data.dev.map { "\($0.examples.count) \($0.split)" }.joined(separator: ", "))
    if let summary = try context.checkCheckpoint(numLabels: resolved.numLabels) { print("checkpoint: " + summary) }
    let outcome = try trainer.run()
    let r = outcome.result, t = outcome.trainable
    print("trainable: \(t.count) of \(r.totalParameters) parameters (\(String(format: "%.4f", 100 * t.fractionOfModel))%)"
          + (t.plan.includesPooler ? ", pooler included" : ", pooler frozen"))
    if r.status == .failed { print("status: failed: \(r.reason ?? "")") }
    for (i, restart) in (r.restarts ?? []).enumerated() {
      print("restart \(i + 1): seed \(restart.seed) collapsed (\(restart.collapse.reason ?? ""))")
    }
    if let c = r.collapse, c.collapsed { print("status: collapsed: \(c.reason!) (the study does not count this cell)") }
    print("dev: " + r.dev.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.4f", $0.value))" }.joined(separator: " ")
          + String(format: "  (%d steps, %.1fs)", r.steps, r.wallSeconds))
    if let saveAdapter {
      try AdapterFile.save(outcome.model, trainable: t, to: URL(fileURLWithPath: saveAdapter),
                           metadata: ["swift_petl.task": spec.task, "swift_petl.spec_hash": spec.hash])
      print("adapter: \(saveAdapter)")
    }
    if let output {
      try writeJSON(TrainReport(spec: spec, result: r, trainableNames: t.plan.trainableNames), to: output)
      print("result: \(output)")
    }
    if r.status == .failed { throw ExitCode(3) }
  }
}

/// `train --output`: the cell, its result (as journaled) and the exact trainable tensors.
struct TrainReport: Encodable {
  let spec: CellSpec
  let result: CellResult
  let trainableNames: [String]

  enum CodingKeys: String, CodingKey {
    case task, modules, layers, spec, specHash = "spec_hash", trainableParameters = "trainable_parameters"
    case trainLosses = "train_losses", dev, result, trainable = "trainable_tensors"
  }

  func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(spec.task, forKey: .task)
    try c.encode(spec.modules, forKey: .modules)
    try c.encode(spec.layers, forKey: .layers)
    try c.encode(spec, forKey: .spec)
    try c.encode(spec.hash, forKey: .specHash)
    try c.encode(result.trainableParameters, forKey: .trainableParameters)
    try c.encode(result.epochs.map(\.trainLoss), forKey: .trainLosses)
    try c.encode(result.dev, forKey: .dev)
    try c.encode(result, forKey: .result)
    try c.encode(trainableNames, forKey: .trainable)
  }
}

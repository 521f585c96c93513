import ArgumentParser
import Foundation
import PETLModel
import PETLText
import PETLData
import PETLTraining
import PETLSupport

/// `swift-petl predict`: outputs of a (fine-tuned) model on a split, one line per example, and the
/// task's metrics.
struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict", abstract: "Predict a task's split with the base model plus an adapter; print the metric.",
    discussion: """
      --output writes a TSV: a header line, then one row per example in the
      split's file order. Columns:
        index       0-based position in the split
        id          the row's id in your file (column id or idx, or task.json's
                    id column); the row index for files without one and for
                    the built-in tasks
        logit_L     one per label L, in class-index order (regression: score)
        label       the gold label (regression: the gold score)
        prediction  the label of the largest logit, the first on ties
                    (regression: the predicted score)
      """)

  @OptionGroup var location: LocationFlags
  @Option(help: "GLUE task, rt-vader, or the path of a folder of your own task (as train --task).") var task: String
  @Option(help: "train, dev, dev_matched, dev_mismatched.") var split: String = "dev"
  @Option(help: "Adapter file (trainable parameters and head) saved by train --save-adapter.") var adapter: String?
  @Option(help: "Predict at most N examples.") var maxExamples: Int?
  @Option(help: "Truncate encodings to this many tokens, at most the model's max_position_embeddings.") var maxLength: Int = 128
  @Option(help: "Write index, id, outputs, gold label and predicted label as TSV here (columns: see the overview).") var output: String?
  @OptionGroup var precisionFlag: PrecisionFlag

  func run() throws {
    var catalog = TaskCatalog()
    let t = try catalog.resolve(task, flag: "--task")
    if let about = t.about { print(about) }
    guard t.splits.contains(split) else { throw ValidationError("--split: task \(task) has splits \(t.splits.joined(separator: ", "))") }
    if let n = maxExamples, n <= 0 { throw ValidationError("--max-examples must be positive") }
    let precision = try precisionFlag.choice().precision
    let configURL = location.modelURL.appendingPathComponent("config.json")
    let config = try EncoderConfig.load(configURL)
    try config.checkInputs(task: t, maxLength: maxLength, configPath: configURL.path)
    let tokenizer = try loadTokenizer(modelDirectory: location.modelURL, config: config)
    let (base, report) = try EncoderModel.load(directory: location.modelURL, config: config, numLabels: t.numLabels)
    if let summary = report.summary { print("checkpoint: " + summary) }
    var m = base
    if let a = adapter {
      m = try AdapterFile.apply(URL(fileURLWithPath: a), to: base).0
    } else if let msg = report.message {
      print("warning: no --adapter: " + msg)
    }
    try m.setPrecision(precision)
    var examples = try loadExamples(task: t, dataDir: location.dataURL, split: split)
    if let n = maxExamples { examples = Array(examples.prefix(n)) }
    let encoded = TaskData.encode(examples, tokenizer: tokenizer, maxLength: maxLength)
    let outputs = Predictor.outputs(model: m, ws: Workspace(dims: m.dims, precision: precision), examples: encoded)
    if let output {
      let tsv = PredictionTable(task: t, examples: examples, outputs: outputs).text
      do { try tsv.write(toFile: output, atomically: true, encoding: .utf8) } catch {
        throw PETLError("\(output): cannot write (\(error.localizedDescription))")
      }
      print("predictions: \(output)")
    }
    let metrics = try evaluate(task: t, split: split, outputs: outputs, labels: encoded.map { $0.label })
    print("\(t.name) \(split) (\(encoded.count) examples): " + metrics.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.4f", $0.value))" }.joined(separator: " "))
  }
}

/// `predict --output`: one row per example that joins back to the user's rows by `id`, with the
/// outputs, the gold label and the predicted one (what `--help` lists).
struct PredictionTable {
  let task: TaskDescriptor
  let examples: [Example]
  let outputs: [[Float]]

  var text: String {
    let values = task.isRegression ? ["score"] : task.labelNames.map { "logit_\($0)" }
    var tsv = (["index", "id"] + values + ["label", "prediction"]).joined(separator: "\t") + "\n"
    for (i, (example, o)) in zip(examples, outputs).enumerated() {
      let gold = task.isRegression ? String(example.label) : task.labelNames[Int(example.label)]
      let predicted = task.isRegression ? String(o[0]) : task.labelNames[argmax(o)]
      tsv += ([String(i), example.id ?? String(i)] + o.map { String($0) } + [gold, predicted]).joined(separator: "\t") + "\n"
    }
    return tsv
  }
}

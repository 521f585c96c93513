import ArgumentParser
import Foundation
import PETLKernels
import PETLModel
import PETLText
import PETLData
import PETLTraining
import PETLDistributed
import PETLStudy

/// `swift-petl predict`: outputs of a (fine-tuned) model on a split, one line per example, and the
/// task's metrics.
struct PredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict", abstract: "Predict a task's split with the base model plus an adapter; print the metric.")

  @OptionGroup var location: LocationFlags
  @Option(help: "GLUE task or rt-vader.") var task: String
  @Option(help: "train, dev, dev_matched, dev_mismatched.") var split: String = "dev"
  @Option(help: "Adapter file (trainable parameters and head) saved by train --save-adapter.") var adapter: String?
  @Option(help: "Predict at most N examples.") var maxExamples: Int?
  @Option(help: "Truncate encodings to this many tokens, at most the model's max_position_embeddings.") var maxLength: Int = 128
  @Option(help: "Write index, outputs, gold label as TSV here.") var output: String?

  func run() throws {
    let t = try TaskDescriptor.named(task)
    guard t.splits.contains(split) else { throw ValidationError("--split: task \(task) has splits \(t.splits.joined(separator: ", "))") }
    if let n = maxExamples, n <= 0 { throw ValidationError("--max-examples must be positive") }
    let configURL = location.modelURL.appendingPathComponent("config.json")
    let config = try EncoderConfig.load(configURL)
    try config.checkInputs(task: t, maxLength: maxLength, configPath: configURL.path)
    let tokenizer = try loadTokenizer(modelDirectory: location.modelURL, config: config)
    let (m, report) = try EncoderModel.load(directory: location.modelURL, numLabels: t.numLabels)
    if let a = adapter {
      try AdapterFile.load(URL(fileURLWithPath: a), into: m)
    } else if let msg = report.message {
      print("warning: no --adapter: " + msg)
    }
    var examples = try loadExamples(task: t, dataDir: location.dataURL, split: split)
    if let n = maxExamples { examples = Array(examples.prefix(n)) }
    let encoded = TaskData.encode(examples, tokenizer: tokenizer, maxLength: maxLength)
    let outputs = Predictor.outputs(model: m, ws: Workspace(dims: m.dims), examples: encoded)
    if let output {
      var tsv = "index\t" + (t.isRegression ? "score" : t.labelNames.map { "logit_\($0)" }.joined(separator: "\t")) + "\tlabel\n"
      for (i, o) in outputs.enumerated() {
        let gold: String = t.isRegression ? String(encoded[i].label) : t.labelNames[Int(encoded[i].label)]
        let values: String = o.map { String($0) }.joined(separator: "\t")
        tsv += "\(i)\t\(values)\t\(gold)\n"
      }
      do { try tsv.write(toFile: output, atomically: true, encoding: .utf8) } catch {
        throw PETLError("\(output): cannot write (\(error.localizedDescription))")
      }
      print("predictions: \(output)")
    }
    let metrics = try evaluate(task: t, split: split, outputs: outputs, labels: encoded.map { $0.label })
    print("\(task) \(split) (\(encoded.count) examples): " + metrics.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.4f", $0.value))" }.joined(separator: " "))
  }
}

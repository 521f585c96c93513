import Foundation
import PETLSupport

/// Everything the rest of the program needs to know about a task: where its files are, how many
/// outputs the head has, what the labels mean and which metrics GLUE reports for it. The built-in
/// tasks are `all`; a user's task is read from its folder (`TaskDescriptor.userTask(folder:)`), and a
/// `TaskCatalog` finds either by name.
public struct TaskDescriptor: Sendable, Equatable {
  /// The name in `CellSpec.task`, so in the journal: lowercase on the command line for the built-in
  /// tasks; a user task's `task.json` name or folder name.
  public let name: String
  /// Folder under the data directory, as `download_glue_data.py` names it (`SST-2`, `STS-B`, ...); a
  /// user task's folder path.
  public let folder: String
  /// Width of the classification head; 1 for regression.
  public let numLabels: Int
  public let isRegression: Bool
  /// Label strings in class-index order. For GLUE these are the label tokens of the files, in the
  /// order of HF's legacy `glue_processors[...].get_labels()`, so our class indices match theirs.
  /// Empty for regression.
  public let labelNames: [String]
  /// The keys `evaluate` reports for this task over all its dev splits.
  public let metricNames: [String]
  /// The metric the study ranks cells by (GLUE's headline number for the task).
  public let primaryMetric: String
  /// Evaluation splits; the first is the one `dev` means.
  public let devSplits: [String]
  /// How the files of this task are laid out; the readers switch on it.
  let source: Source

  enum Source: Sendable, Equatable {
    case glue(ColumnLayout)
    case rtVader
    case user(UserTaskFiles)
  }

  /// Whether the task's examples are sentence pairs (`[CLS] a [SEP] b [SEP]`, token types 0 and 1).
  public var isPair: Bool {
    switch source {
    case .glue(let layout): return layout.textB != nil
    case .user(let files): return files.layout.textB != nil
    case .rtVader: return false
    }
  }

  /// All tasks this program knows, GLUE order first, then the embedded default.
  public static let all: [TaskDescriptor] = [
    classification("cola", folder: "CoLA", labels: ["0", "1"], metrics: ["mcc"],
                   layout: ColumnLayout(implicitHeader: ["source", "label", "original_label", "sentence"],
                                        textA: "sentence", label: "label")),
    classification("sst2", folder: "SST-2", labels: ["0", "1"], metrics: ["accuracy"],
                   layout: ColumnLayout(textA: "sentence", label: "label")),
    classification("mrpc", folder: "MRPC", labels: ["0", "1"], metrics: ["f1", "accuracy"],
                   layout: ColumnLayout(textA: "#1 String", textB: "#2 String", label: "Quality")),
    TaskDescriptor(name: "stsb", folder: "STS-B", numLabels: 1, isRegression: true, labelNames: [],
                   metricNames: ["pearson", "spearman"], primaryMetric: "pearson", devSplits: ["dev"],
                   source: .glue(ColumnLayout(textA: "sentence1", textB: "sentence2", label: "score"))),
    classification("qqp", folder: "QQP", labels: ["0", "1"], metrics: ["f1", "accuracy"],
                   layout: ColumnLayout(textA: "question1", textB: "question2", label: "is_duplicate")),
    classification("mnli", folder: "MNLI", labels: ["contradiction", "entailment", "neutral"],
                   metrics: ["accuracy", "accuracy_mm"], devSplits: ["dev_matched", "dev_mismatched"],
                   layout: ColumnLayout(textA: "sentence1", textB: "sentence2", label: "gold_label")),
    classification("qnli", folder: "QNLI", labels: ["entailment", "not_entailment"], metrics: ["accuracy"],
                   layout: ColumnLayout(textA: "question", textB: "sentence", label: "label")),
    classification("rte", folder: "RTE", labels: ["entailment", "not_entailment"], metrics: ["accuracy"],
                   layout: ColumnLayout(textA: "sentence1", textB: "sentence2", label: "label")),
    classification("wnli", folder: "WNLI", labels: ["0", "1"], metrics: ["accuracy"],
                   layout: ColumnLayout(textA: "sentence1", textB: "sentence2", label: "label")),
    TaskDescriptor(name: "rt-vader", folder: "rt-vader", numLabels: 2, isRegression: false,
                   labelNames: ["negative", "positive"], metricNames: ["accuracy"],
                   primaryMetric: "accuracy", devSplits: ["dev"], source: .rtVader),
  ]

  /// Looks a task up by its CLI name.
  public static func named(_ name: String) throws -> TaskDescriptor {
    guard let task = all.first(where: { $0.name == name }) else {
      throw PETLError("unknown task '\(name)' (known: \(all.map(\.name).joined(separator: ", ")))")
    }
    return task
  }

  /// Splits `loadExamples` accepts: `train`, `dev`, and the named dev splits.
  public var splits: [String] {
    var out = ["train", "dev"]
    for s in devSplits where !out.contains(s) { out.append(s) }
    return out
  }

  /// Resolves `dev` to the task's first dev split and rejects names the task does not have.
  func resolveSplit(_ split: String) throws -> String {
    guard splits.contains(split) else {
      throw PETLError("task \(name): unknown split '\(split)' (known: \(splits.joined(separator: ", ")))")
    }
    return split == "dev" ? devSplits[0] : split
  }

  /// The key a metric gets in the results of `split`: MNLI's mismatched dev split reports
  /// `accuracy_mm`, as GLUE's leaderboard and HF's `run_glue` name it; every other split keeps `metric`.
  public func metricKey(_ metric: String, split: String) -> String {
    split == "dev_mismatched" ? metric + "_mm" : metric
  }

  private static func classification(_ name: String, folder: String, labels: [String], metrics: [String],
                                     devSplits: [String] = ["dev"], layout: ColumnLayout) -> TaskDescriptor {
    TaskDescriptor(name: name, folder: folder, numLabels: labels.count, isRegression: false,
                   labelNames: labels, metricNames: metrics, primaryMetric: metrics[0],
                   devSplits: devSplits, source: .glue(layout))
  }
}

extension TaskDescriptor {
  /// The files the readers open for this task's training and dev splits, and a user task's `task.json`:
  /// what its results depend on, so what a journal fingerprints.
  public func inputFiles(dataDirectory: URL) -> [URL] {
    switch source {
    case .glue:
      let folder = dataDirectory.appendingPathComponent(self.folder)
      return (["train"] + devSplits).map { folder.appendingPathComponent($0 + ".tsv") }
    case .rtVader:
      return [dataDirectory.appendingPathComponent("rt-vader").appendingPathComponent(RTVader.fileName)]
    case .user(let files):
      return [files.train.url, files.dev.url] + (files.taskFile.map { [$0] } ?? [])
    }
  }
}

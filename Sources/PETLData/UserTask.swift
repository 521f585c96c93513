import Foundation
import PETLSupport

/// The formats a user task's split files may have, by file extension.
enum TableFormat: String, CaseIterable, Sendable {
  case tsv, csv, jsonl

  var dialect: DelimitedText.Dialect {
    switch self {
    case .tsv: return .tsv
    case .csv: return .csv
    case .jsonl: return .lines
    }
  }
}

/// Where a user task's rows are and how to read them, as resolved from its folder.
struct UserTaskFiles: Sendable, Equatable {
  struct File: Sendable, Equatable {
    var url: URL
    var format: TableFormat
  }

  var folder: URL
  var train: File
  var dev: File
  var taskFile: URL?
  /// The concrete column names, chosen from the training file's header and `task.json`; the dev
  /// file must have the same ones.
  var layout: ColumnLayout
  /// Where the label set came from, for the line that describes the task; nil for regression.
  var labelSource: String?

  func load(task: TaskDescriptor, split: String) throws -> [Example] {
    let file = split == "train" ? train : dev
    let text = try DelimitedText(url: file.url, dialect: file.format.dialect) {
      "\(file.url.path): file not found (task \(task.name) was read from the folder \(folder.path))"
    }
    return try TableReader.examples(text, layout: layout, task: task)
  }
}

extension TaskDescriptor {
  /// The task a folder holds: `train` and `dev` files, each `.tsv`, `.csv` or `.jsonl`, and an
  /// optional `task.json` (`TaskFile`). Texts are in the columns `text` (or `sentence`) and, for a pair
  /// task, `text_pair`; labels in `label`; an optional `id` (or `idx`) names each row. Without a label
  /// set in `task.json` the labels are the distinct training labels sorted, numerically when every one
  /// is an integer, else by their UTF-8 bytes: a rule that gives the same class indices on every rank
  /// and every run of the same rows. The training file is read here (its header, and its labels when
  /// they must be inferred); the dev file's labels are checked when the examples are loaded.
  public static func userTask(folder given: URL) throws -> TaskDescriptor {
    // One spelling per folder (`dir` and `dir/` alike), so resolving it twice gives one task.
    let folder = URL(fileURLWithPath: given.standardizedFileURL.path, isDirectory: true)
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue else {
      throw PETLError("\(folder.path): not a folder (a task folder holds train and dev files)")
    }
    let taskFileURL = folder.appendingPathComponent("task.json")
    let hasTaskFile = FileManager.default.fileExists(atPath: taskFileURL.path)
    let spec = hasTaskFile ? try TaskFile(url: taskFileURL) : TaskFile()
    let name = spec.name ?? folder.lastPathComponent
    try checkName(name, from: hasTaskFile && spec.name != nil ? "\(taskFileURL.path): name" : "\(folder.path): folder name")
    let train = try splitFile(folder, "train"), dev = try splitFile(folder, "dev")

    let trainText = try DelimitedText(url: train.url, dialect: train.format.dialect) { "\(train.url.path): file not found" }
    let header = try TableReader.header(trainText)
    let kind = train.format == .jsonl ? "field" : "column"
    func pick(_ role: String, _ defaults: [String]) -> String? {
      spec.columns[role] ?? defaults.first(where: header.contains)
    }
    guard let textA = pick("text", ["text", "sentence"]) else {
      throw PETLError("\(train.url.path):1: no \(kind) 'text' or 'sentence' (found: \(shown(header.joined(separator: ", "), limit: 120)))")
    }
    let layout = ColumnLayout(textA: textA, textB: pick("text_pair", ["text_pair"]), label: pick("label", ["label"]) ?? "label",
                              id: pick("id", ["id", "idx"]))

    var labels: [String] = []
    var labelSource: String? = nil
    if !spec.isRegression {
      if let given = spec.labels {
        labels = given
        labelSource = "task.json"
      } else {
        labels = try inferLabels(trainText, layout: layout)
        labelSource = "the training labels, sorted"
      }
      if spec.metric == "f1" && labels.count != 2 {
        throw PETLError("\(hasTaskFile ? taskFileURL.path : folder.path): metric f1 needs exactly two labels (class 1 is the positive one), "
                          + "the task has \(labels.count): \(labels.joined(separator: ", "))")
      }
    }
    let metrics = spec.isRegression ? ["pearson", "spearman"] : [spec.metric] + (spec.metric == "accuracy" ? [] : ["accuracy"])
    let files = UserTaskFiles(folder: folder, train: train, dev: dev, taskFile: hasTaskFile ? taskFileURL : nil,
                              layout: layout, labelSource: labelSource)
    return TaskDescriptor(name: name, folder: folder.path, numLabels: spec.isRegression ? 1 : labels.count,
                          isRegression: spec.isRegression, labelNames: labels, metricNames: metrics,
                          primaryMetric: spec.metric, devSplits: ["dev"], source: .user(files))
  }

  /// What a user task was read from, one line for `train`, `predict` and `grid` to print; nil for a
  /// built-in task.
  public var about: String? {
    guard case .user(let files) = source else { return nil }
    let names = [files.train.url, files.dev.url] + (files.taskFile.map { [$0] } ?? [])
    let l = files.layout
    let columns = ["text=\(l.textA)"] + (l.textB.map { ["text_pair=\($0)"] } ?? []) + ["label=\(l.label)"]
      + (l.id.map { ["id=\($0)"] } ?? [])
    let labels = isRegression ? "regression (one output, float labels)"
      : "labels \(labelNames.joined(separator: ", ")) (from \(files.labelSource ?? "?"))"
    return "task \(name): \(files.folder.path)/{\(names.map(\.lastPathComponent).joined(separator: ", "))}; "
      + "\(columns.joined(separator: ", ")); \(labels); metric \(primaryMetric)"
  }

  /// A task name goes into cell specs, file names of the report and comma-separated flags; it must
  /// not pass for a built-in task (a journal would mix the two under one name).
  private static func checkName(_ name: String, from origin: String) throws {
    let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    guard !name.isEmpty, name.utf8.count <= 64, name.allSatisfy(allowed.contains), name.first != ".", name.first != "-" else {
      throw PETLError("\(origin) '\(shown(name))' cannot name a task (up to 64 ASCII letters, digits, '.', '_', '-'; not first '.' or '-'); "
                        + "set task.json's \"name\"")
    }
    if let builtIn = all.first(where: { $0.name.lowercased() == name.lowercased() }) {
      throw PETLError("\(origin) '\(shown(name))' is the built-in task \(builtIn.name)'s; set task.json's \"name\" to another")
    }
  }

  /// The one file of a split: `<split>.tsv`, `.csv` or `.jsonl`.
  private static func splitFile(_ folder: URL, _ split: String) throws -> UserTaskFiles.File {
    let found = TableFormat.allCases.map { UserTaskFiles.File(url: folder.appendingPathComponent("\(split).\($0.rawValue)"), format: $0) }
      .filter { FileManager.default.fileExists(atPath: $0.url.path) }
    guard let file = found.first else {
      throw PETLError("\(folder.path): no \(split) file (\(TableFormat.allCases.map { "\(split).\($0.rawValue)" }.joined(separator: ", ")))")
    }
    guard found.count == 1 else {
      throw PETLError("\(folder.path): \(found.map(\.url.lastPathComponent).joined(separator: " and ")) are both the \(split) split; keep one")
    }
    return file
  }

  /// The distinct labels of the training rows, sorted: numerically when all are integers, else by
  /// their UTF-8 bytes (code point order, as Python's `sorted` orders strings).
  private static func inferLabels(_ file: DelimitedText, layout: ColumnLayout) throws -> [String] {
    var seen = Set<String>()
    var labels: [String] = []
    try TableReader.forEachRow(file, layout: layout) { row in
      let label = row.label.className
      guard !seen.contains(label) else { return }
      if let problem = TaskFile.problem(label: label) { throw PETLError("\(file.path):\(row.line): \(problem)") }
      seen.insert(label)
      labels.append(label)
    }
    guard labels.count >= 2 else {
      throw PETLError("\(file.path): \(labels.isEmpty ? "no data rows" : "every row has the label '\(shown(labels[0]))'"); "
                        + "a classification task needs two labels or more (task.json \"labels\" lists them)")
    }
    if labels.allSatisfy({ Int($0) != nil }) {
      return labels.sorted { a, b in
        let x = Int(a)!, y = Int(b)!
        return x != y ? x < y : a.utf8.lexicographicallyPrecedes(b.utf8)
      }
    }
    return labels.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
  }
}

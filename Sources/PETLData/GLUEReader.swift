import Foundation
import PETLKernels

/// Which columns of a GLUE task's TSV hold the text and the label, by header name, as
/// `download_glue_data.py` wrote the files. Reading by name states what a file must contain instead of
/// trusting a position; CoLA, the one file without a header, gets its column names from the layout.
struct GLUELayout: Sendable, Equatable {
  /// Column names of a file that has no header line; nil when the file's first line is its header.
  var implicitHeader: [String]? = nil
  var textA: String
  var textB: String? = nil
  var label: String
}

/// Reads one split of a task into examples. `dataDir` holds the task folders: the `glue_data`
/// directory for GLUE tasks (`<dataDir>/RTE/train.tsv`), the `data` directory for rt-vader
/// (`<dataDir>/rt-vader/...`). `split` is `train`, `dev` (MNLI: `dev_matched`), or one of the task's
/// `devSplits`. Every malformed row throws `<path>:<line>: <what>`; no row is skipped silently.
public func loadExamples(task: TaskDescriptor, dataDir: URL, split: String) throws -> [Example] {
  let split = try task.resolveSplit(split)
  switch task.source {
  case .glue(let layout): return try loadGLUE(task: task, layout: layout, dataDir: dataDir, split: split)
  case .rtVader: return try RTVader.load(dataDir: dataDir, split: split)
  }
}

/// Field positions of the columns a layout needs, found in a header.
private struct ColumnIndices {
  let count: Int
  let textA: Int
  let textB: Int?
  let label: Int

  init(header names: [String], layout: GLUELayout, path: String, line: Int) throws {
    func find(_ name: String) throws -> Int {
      guard let i = names.firstIndex(of: name) else {
        throw PETLError("\(path):\(line): header has no column '\(name)' (found: \(names.joined(separator: ", ")))")
      }
      return i
    }
    count = names.count
    textA = try find(layout.textA)
    textB = try layout.textB.map(find)
    label = try find(layout.label)
  }
}

private func loadGLUE(task: TaskDescriptor, layout: GLUELayout, dataDir: URL,
                      split: String) throws -> [Example] {
  let url = dataDir.appendingPathComponent(task.folder).appendingPathComponent(split + ".tsv")
  let file = try DelimitedText(url: url) {
    "\(url.path): file not found (task \(task.name) reads the glue_data folder \(task.folder)/ "
      + "under the data directory \(dataDir.path))"
  }
  let classIndex = Dictionary(uniqueKeysWithValues: task.labelNames.enumerated().map { ($1, $0) })
  var columns = try layout.implicitHeader.map {
    try ColumnIndices(header: $0, layout: layout, path: file.path, line: 0)
  }

  var examples: [Example] = []
  try file.forEachLine { line, fields in
    guard let cols = columns else {
      columns = try ColumnIndices(header: fields.map(file.text), layout: layout, path: file.path, line: line)
      return
    }
    guard fields.count == cols.count else {
      throw PETLError("\(file.path):\(line): expected \(cols.count) tab-separated columns, found \(fields.count)")
    }
    let token = file.text(fields[cols.label])
    let label: Float
    if task.isRegression {
      guard let score = Float(token), score.isFinite else {
        throw PETLError("\(file.path):\(line): score '\(token)' is not a finite number")
      }
      label = score
    } else {
      guard let k = classIndex[token] else {
        throw PETLError("\(file.path):\(line): unknown label '\(token)' "
                          + "(expected one of: \(task.labelNames.joined(separator: ", ")))")
      }
      label = Float(k)
    }
    examples.append(Example(textA: file.text(fields[cols.textA]),
                            textB: cols.textB.map { file.text(fields[$0]) }, label: label))
  }
  guard !examples.isEmpty else { throw PETLError("\(file.path): no data rows") }
  return examples
}

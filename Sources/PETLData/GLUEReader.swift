import Foundation

/// Reads one split of a task into examples. `dataDir` holds the built-in task folders: the
/// `glue_data` directory for GLUE tasks (`<dataDir>/RTE/train.tsv`), the `data` directory for rt-vader
/// (`<dataDir>/rt-vader/...`); a user's task names its own files. `split` is `train`, `dev` (MNLI:
/// `dev_matched`), or one of the task's `devSplits`. Every malformed row throws `<path>:<line>: <what>`;
/// no row is skipped silently.
public func loadExamples(task: TaskDescriptor, dataDir: URL, split: String) throws -> [Example] {
  let split = try task.resolveSplit(split)
  switch task.source {
  case .glue(let layout): return try loadGLUE(task: task, layout: layout, dataDir: dataDir, split: split)
  case .rtVader: return try RTVader.load(dataDir: dataDir, split: split)
  case .user(let files): return try files.load(task: task, split: split)
  }
}

private func loadGLUE(task: TaskDescriptor, layout: ColumnLayout, dataDir: URL,
                      split: String) throws -> [Example] {
  let url = dataDir.appendingPathComponent(task.folder).appendingPathComponent(split + ".tsv")
  let file = try DelimitedText(url: url) {
    "\(url.path): file not found (task \(task.name) reads the glue_data folder \(task.folder)/ "
      + "under the data directory \(dataDir.path))"
  }
  return try TableReader.examples(file, layout: layout, task: task)
}

import ArgumentParser
import Foundation
import PETLModel
import PETLText

/// `swift-petl embed`: sentence embeddings as sentence-transformers computes them for
/// all-MiniLM-L6-v2 (mean of the last hidden states over real tokens, L2-normalised).
struct EmbedCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "embed", abstract: "Print a mean-pooled, L2-normalised sentence embedding per line of stdin.")

  @OptionGroup var modelFlag: ModelFlag
  @Option(help: "Truncate each sentence to this many tokens, at most the model's max_position_embeddings.") var maxLength: Int = 128
  @OptionGroup var precisionFlag: PrecisionFlag

  func run() throws {
    let dir = modelFlag.url, config = try modelFlag.config()
    try config.checkMaxLength(maxLength, pairs: false, configPath: modelFlag.configURL.path)
    let tokenizer = try loadTokenizer(modelDirectory: dir, config: config)
    // stdout holds the embeddings only: the precision's choice and the checkpoint summary go to stderr.
    let choice = try precisionFlag.choice(print: false)
    if precisionFlag.precision != .fp32 { FileHandle.standardError.write(Data("precision: \(choice.why)\n".utf8)) }
    let (m, report) = try EncoderModel.load(directory: dir, config: config, numLabels: 2)
    if let summary = report.summary { FileHandle.standardError.write(Data(("checkpoint: " + summary + "\n").utf8)) }
    try m.setPrecision(choice.precision)
    let ws = Workspace(dims: m.dims, precision: choice.precision)
    let text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if lines.last == "" { lines.removeLast() }
    var i = 0
    while i < lines.count {
      let chunk = lines[i..<min(i + 32, lines.count)]
      let batch = Batch(sequences: chunk.map { let e = tokenizer.encode($0, maxLength: maxLength); return (e.inputIds, e.tokenTypeIds) },
                        labels: chunk.map { _ in 0 }, exampleIds: chunk.indices.map { UInt64($0) })
      for v in m.embed(batch, ws: ws) { print(v.map { String($0) }.joined(separator: " ")) }
      i += 32
    }
  }
}

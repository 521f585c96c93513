import ArgumentParser
import Foundation
import PETLModel
import PETLText
import PETLSupport

/// `swift-petl tokenize`: the model's input ids for lines of stdin, one output line per input line, so
/// the tokenizer can be diffed against HuggingFace from the shell.
struct TokenizeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tokenize",
    abstract: "Print the model's input ids (with its special tokens) for each line of stdin, separated by spaces.")

  @Option(help: "Model folder with vocab.txt (and tokenizer_config.json), or RoBERTa's vocab.json and merges.txt.")
  var model: String

  @Option(help: "Truncate each encoding to this many ids (longest-first for pairs); at most the model's max_position_embeddings when the folder has config.json.")
  var maxLength: Int = 128

  @Flag(help: "Each line holds two texts separated by a TAB, encoded as a pair.")
  var pairs = false

  func validate() throws {
    guard maxLength >= 2 else {
      throw ValidationError("--max-length must be at least 2 to hold the special tokens, got \(maxLength)")
    }
  }

  func run() throws {
    // A model folder (with config.json) bounds the ids and the length by its tables; a folder with
    // only vocab.txt is a tokenizer alone.
    let dir = URL(fileURLWithPath: model)
    let configURL = dir.appendingPathComponent("config.json")
    let config = FileManager.default.fileExists(atPath: configURL.path) ? try EncoderConfig.load(configURL) : nil
    try config?.checkMaxLength(maxLength, pairs: pairs, configPath: configURL.path)
    let tokenizer = try loadTokenizer(modelDirectory: dir, config: config)
    let minimum = tokenizer.specialTokenCount(pair: pairs)
    guard maxLength >= minimum else {
      throw PETLError("--max-length \(maxLength): must be at least \(minimum) to hold the special tokens\(pairs ? " of a pair" : "")")
    }
    let input = FileHandle.standardInput.readDataToEndOfFile()
    var lines = input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    if lines.last?.isEmpty == true { lines.removeLast() }
    var output = ""
    for (index, bytes) in lines.enumerated() {
      guard let line = String(validating: bytes, as: UTF8.self) else {
        throw PETLError("stdin line \(index + 1): not valid UTF-8")
      }
      let encoding: Encoding
      if pairs {
        guard let tab = line.firstIndex(of: "\t") else {
          throw PETLError("stdin line \(index + 1): --pairs expects two texts separated by a TAB")
        }
        encoding = tokenizer.encode(String(line[..<tab]), String(line[line.index(after: tab)...]),
                                    maxLength: maxLength)
      } else {
        encoding = tokenizer.encode(line, maxLength: maxLength)
      }
      output += encoding.inputIds.map(String.init).joined(separator: " ")
      output += "\n"
      if output.utf8.count >= 1 << 16 { print(output, terminator: ""); output = "" }
    }
    print(output, terminator: "")
  }
}

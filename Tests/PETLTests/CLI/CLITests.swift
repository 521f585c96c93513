import Foundation
import XCTest
@testable import PETLModel

/// Bad input through the built binary: one clear error line naming the file or flag, a non-zero exit,
/// never a trap.
final class CLITests: XCTestCase {
  func tempModel(_ mutate: (URL) throws -> Void) throws -> URL {
    let src = try TestSupport.requireModel()
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("petl-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(at: d) }
    for f in ["config.json", "vocab.txt", "tokenizer_config.json"] {
      try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: d.appendingPathComponent(f))
    }
    try mutate(d)
    return d
  }

  /// Sets fields of the temp model's config.json.
  func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
    let url = dir.appendingPathComponent("config.json")
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    edit(&json)
    try JSONSerialization.data(withJSONObject: json).write(to: url)
  }

  /// The binary with stdin from /dev/null (tokenize and embed read stdin: never wait on a terminal).
  func run(_ args: [String]) throws -> (status: Int32, output: String) {
    try TestSupport.launch(["sh", "-c", "exec \"$0\" \"$@\" </dev/null", TestSupport.binary] + args)
  }

  func assertOneLineError(_ args: [String], contains text: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let run = try self.run(args)
    XCTAssertNotEqual(run.status, 0, run.output, file: file, line: line)
    XCTAssertLessThan(run.status, 128, "exited by a signal (trap?): \(run.output)", file: file, line: line)
    let errors = run.output.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
    XCTAssertEqual(errors.count, 1, run.output, file: file, line: line)
    XCTAssertTrue(run.output.contains(text), "expected '\(text)' in: \(run.output)", file: file, line: line)
  }

  func testTruncatedCheckpoint() throws {
    let full = try Data(contentsOf: try TestSupport.requireModel().appendingPathComponent("model.safetensors"))
    let d = try tempModel { try full.prefix(1_000_000).write(to: $0.appendingPathComponent("model.safetensors")) }
    try assertOneLineError(["inspect", "--model", d.path], contains: "model.safetensors")
  }

  func testTensorOfTheWrongShape() throws {
    let d = try tempModel { dir in
      // the config implies a [30522, 384] word-embedding table; the file holds a 2x3 one
      let vals: [Float] = [1, 2, 3, 4, 5, 6]
      try vals.withUnsafeBufferPointer {
        try SafeTensors.write(to: dir.appendingPathComponent("model.safetensors"),
                              tensors: [("embeddings.word_embeddings.weight", [2, 3], $0)], metadata: [:])
      }
    }
    try assertOneLineError(["inspect", "--model", d.path], contains: "has shape [2, 3], config.json implies [30522, 384]")
  }

  func testConfigMissingAField() throws {
    let d = try tempModel { dir in
      let url = dir.appendingPathComponent("config.json")
      var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
      json["num_attention_heads"] = nil
      try JSONSerialization.data(withJSONObject: json).write(to: url)
    }
    try assertOneLineError(["inspect", "--model", d.path], contains: "missing field 'num_attention_heads'")
  }

  /// A family the engine does not compute, and one it does from a folder that lacks its files, end
  /// in one line through every command that reads the model.
  func testUnsupportedFamilyAndMissingTokenizerFiles() throws {
    let gpt2 = try tempModel { dir in
      let url = dir.appendingPathComponent("config.json")
      var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
      json["model_type"] = "gpt2"
      try JSONSerialization.data(withJSONObject: json).write(to: url)
    }
    let unsupported = "model_type 'gpt2' is not supported (supported: bert, roberta, electra, distilbert)"
    try assertOneLineError(["inspect", "--model", gpt2.path], contains: unsupported)
    try assertOneLineError(["train", "--task", "rt-vader", "--data-dir", Self.vader, "--model", gpt2.path] + Self.small,
                           contains: unsupported)
    let roberta = try FamilyFixtures.folder(.roberta)
    addTeardownBlock { try? FileManager.default.removeItem(at: roberta) }
    try FileManager.default.removeItem(at: roberta.appendingPathComponent("merges.txt"))
    try assertOneLineError(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", roberta.path],
                           contains: "--max-length 128: the model has max_position_embeddings 66, positions start at pad_token_id + 1 = 2")
    let merges = roberta.appendingPathComponent("merges.txt").path
    try assertOneLineError(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", roberta.path,
                            "--max-length", "32"], contains: merges)
    try assertOneLineError(["tokenize", "--model", roberta.path, "--max-length", "32"], contains: merges)
  }

  func testBadFlagsAndMissingData() throws {
    try assertOneLineError(["train", "--task", "rte", "--data-dir", "/nonexistent", "--model", TestSupport.modelDir.path],
                           contains: "/nonexistent/RTE/train.tsv")
    try assertOneLineError(["train", "--task", "rte", "--optimizer", "adam"], contains: "'adam' is invalid for '--optimizer")
    try assertOneLineError(["grid", "--preset", "huge"], contains: "'huge' is invalid for '--preset")
  }

  // MARK: a model folder's tables against what indexes them (release builds have no bounds checks)

  static let vader = TestSupport.root.appendingPathComponent("data").path
  static let glue = TestSupport.glueDir.path
  /// Few examples: the checks come before the data, and a debug build tokenizes slowly.
  static let small = ["--max-train", "8", "--max-eval", "8", "--max-steps", "1"]

  func testVocabularyLongerThanVocabSize() throws {
    let d = try tempModel { dir in
      let url = dir.appendingPathComponent("vocab.txt")
      var text = try String(contentsOf: url, encoding: .utf8)
      text += (0..<50).map { "extra\($0)\n" }.joined()
      try text.write(to: url, atomically: true, encoding: .utf8)
    }
    let message = "\(d.appendingPathComponent("vocab.txt").path): 30572 tokens but config.json vocab_size is 30522"
    try assertOneLineError(["tokenize", "--model", d.path], contains: message)
    try assertOneLineError(["embed", "--model", d.path], contains: message)
    try assertOneLineError(["inspect", "--model", d.path], contains: message)
    try assertOneLineError(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path], contains: message)
    try assertOneLineError(["train", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path] + Self.small, contains: message)
  }

  func testMaxLengthAboveThePositionTable() throws {
    let d = try tempModel { try self.editConfig($0) { $0["max_position_embeddings"] = 64 } }
    let config = d.appendingPathComponent("config.json").path
    let message = "--max-length 128: the model has max_position_embeddings 64 (\(config))"
    try assertOneLineError(["train", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path, "--max-length", "128"] + Self.small,
                           contains: message)
    // the default (128) is checked as well as a given flag
    try assertOneLineError(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path], contains: message)
    try assertOneLineError(["embed", "--model", d.path, "--max-length", "128"], contains: message)
    try assertOneLineError(["tokenize", "--model", d.path, "--max-length", "128"], contains: message)
    try assertOneLineError(["tokenize", "--model", d.path, "--max-length", "65", "--pairs"],
                           contains: "--max-length 65: the model has max_position_embeddings 64")
    // the table's own size is fine (no off-by-one)
    let fits = try run(["tokenize", "--model", d.path, "--max-length", "64"])
    XCTAssertEqual(fits.status, 0, fits.output)
  }

  func testMaxLengthTooShortForTheSpecialTokens() throws {
    let model = TestSupport.modelDir.path
    // predict had no lower bound: the encoder's precondition trapped (or, unchecked, read out of bounds)
    try assertOneLineError(["predict", "--task", "rte", "--data-dir", Self.glue, "--model", model, "--max-length", "2"],
                           contains: "--max-length 2: must be at least 3 to hold [CLS] and two [SEP]")
    try assertOneLineError(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", model, "--max-length", "1"],
                           contains: "--max-length 1: must be at least 2")
    try assertOneLineError(["embed", "--model", model, "--max-length", "1"], contains: "--max-length 1: must be at least 2")
  }

  func testPairTaskOnAModelWithOneTokenType() throws {
    let d = try tempModel { try self.editConfig($0) { $0["type_vocab_size"] = 1 } }
    let message = "task rte encodes sentence pairs (token type 1) but the model has type_vocab_size 1 (\(d.appendingPathComponent("config.json").path))"
    try assertOneLineError(["train", "--task", "rte", "--data-dir", Self.glue, "--model", d.path] + Self.small, contains: message)
    try assertOneLineError(["predict", "--task", "rte", "--data-dir", Self.glue, "--model", d.path], contains: message)
    // a single-sentence task only uses token type 0: it gets past the check (to the missing weights)
    try assertOneLineError(["train", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path] + Self.small,
                           contains: "model.safetensors: no such file")
  }
}

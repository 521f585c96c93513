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

  func testTruncatedCheckpoint() throws {
    let full = try Data(contentsOf: try TestSupport.requireModel().appendingPathComponent("model.safetensors"))
    let d = try tempModel { try full.prefix(1_000_000).write(to: $0.appendingPathComponent("model.safetensors")) }
    assertOneErrorLine(try run(["inspect", "--model", d.path]), "model.safetensors")
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
    assertOneErrorLine(try run(["inspect", "--model", d.path]), "has shape [2, 3], config.json implies [30522, 384]")
  }

  func testConfigMissingAField() throws {
    let d = try tempModel { dir in
      let url = dir.appendingPathComponent("config.json")
      var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
      json["num_attention_heads"] = nil
      try JSONSerialization.data(withJSONObject: json).write(to: url)
      try FileManager.default.createSymbolicLink(at: dir.appendingPathComponent("model.safetensors"),
                                                 withDestinationURL: TestSupport.modelDir.appendingPathComponent("model.safetensors"))
    }
    // As transformers reads it: the class default (12 heads, which is MiniLM's), said in one line.
    let (status, output) = try TestSupport.launch([TestSupport.binary, "inspect", "--model", d.path], timeout: 120)
    XCTAssertEqual(status, 0, output)
    XCTAssertTrue(output.contains("config.json leaves out num_attention_heads: transformers' defaults used"), output)
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
    assertOneErrorLine(try run(["inspect", "--model", gpt2.path]), unsupported)
    assertOneErrorLine(try run(["train", "--task", "rt-vader", "--data-dir", Self.vader, "--model", gpt2.path] + Self.small),
                           unsupported)
    let roberta = try FamilyFixtures.folder(.roberta)
    addTeardownBlock { try? FileManager.default.removeItem(at: roberta) }
    try FileManager.default.removeItem(at: roberta.appendingPathComponent("merges.txt"))
    assertOneErrorLine(try run(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", roberta.path]),
                           "--max-length 128: the model has max_position_embeddings 66, positions start at pad_token_id + 1 = 2")
    let merges = roberta.appendingPathComponent("merges.txt").path
    assertOneErrorLine(try run(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", roberta.path,
                            "--max-length", "32"]), merges)
    assertOneErrorLine(try run(["tokenize", "--model", roberta.path, "--max-length", "32"]), merges)
  }

  func testBadFlagsAndMissingData() throws {
    assertOneErrorLine(try run(["train", "--task", "rte", "--data-dir", "/nonexistent", "--model", TestSupport.modelDir.path]),
                           "/nonexistent/RTE/train.tsv")
    assertOneErrorLine(try run(["train", "--task", "rte", "--optimizer", "adam"]), "'adam' is invalid for '--optimizer")
    assertOneErrorLine(try run(["grid", "--preset", "huge"]), "'huge' is invalid for '--preset")
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
    assertOneErrorLine(try run(["tokenize", "--model", d.path]), message)
    assertOneErrorLine(try run(["embed", "--model", d.path]), message)
    assertOneErrorLine(try run(["inspect", "--model", d.path]), message)
    assertOneErrorLine(try run(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path]), message)
    assertOneErrorLine(try run(["train", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path] + Self.small), message)
  }

  func testMaxLengthAboveThePositionTable() throws {
    let d = try tempModel { try self.editConfig($0) { $0["max_position_embeddings"] = 64 } }
    let config = d.appendingPathComponent("config.json").path
    let message = "--max-length 128: the model has max_position_embeddings 64 (\(config))"
    assertOneErrorLine(try run(["train", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path, "--max-length", "128"] + Self.small),
                           message)
    // the default (128) is checked as well as a given flag
    assertOneErrorLine(try run(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path]), message)
    assertOneErrorLine(try run(["embed", "--model", d.path, "--max-length", "128"]), message)
    assertOneErrorLine(try run(["tokenize", "--model", d.path, "--max-length", "128"]), message)
    assertOneErrorLine(try run(["tokenize", "--model", d.path, "--max-length", "65", "--pairs"]),
                           "--max-length 65: the model has max_position_embeddings 64")
    // the table's own size is fine (no off-by-one)
    let fits = try run(["tokenize", "--model", d.path, "--max-length", "64"])
    XCTAssertEqual(fits.status, 0, fits.output)
  }

  func testMaxLengthTooShortForTheSpecialTokens() throws {
    let model = TestSupport.modelDir.path
    // predict had no lower bound: the encoder's precondition trapped (or, unchecked, read out of bounds)
    assertOneErrorLine(try run(["predict", "--task", "rte", "--data-dir", Self.glue, "--model", model, "--max-length", "2"]),
                           "--max-length 2: must be at least 3 to hold [CLS] and two [SEP]")
    assertOneErrorLine(try run(["predict", "--task", "rt-vader", "--data-dir", Self.vader, "--model", model, "--max-length", "1"]),
                           "--max-length 1: must be at least 2")
    assertOneErrorLine(try run(["embed", "--model", model, "--max-length", "1"]), "--max-length 1: must be at least 2")
  }

  func testPairTaskOnAModelWithOneTokenType() throws {
    let d = try tempModel { try self.editConfig($0) { $0["type_vocab_size"] = 1 } }
    let message = "task rte encodes sentence pairs (token type 1) but the model has type_vocab_size 1 (\(d.appendingPathComponent("config.json").path))"
    assertOneErrorLine(try run(["train", "--task", "rte", "--data-dir", Self.glue, "--model", d.path] + Self.small), message)
    assertOneErrorLine(try run(["predict", "--task", "rte", "--data-dir", Self.glue, "--model", d.path]), message)
    // a single-sentence task only uses token type 0: it gets past the check (to the missing weights)
    assertOneErrorLine(try run(["train", "--task", "rt-vader", "--data-dir", Self.vader, "--model", d.path] + Self.small),
                           "model.safetensors: no such file")
  }
}

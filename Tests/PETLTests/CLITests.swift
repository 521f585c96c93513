import Foundation
import XCTest
@testable import PETL

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

  func assertOneLineError(_ args: [String], contains text: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let run = try TestSupport.launch([TestSupport.binary] + args)
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

  func testBadFlagsAndMissingData() throws {
    try assertOneLineError(["train", "--task", "rte", "--data-dir", "/nonexistent", "--model", TestSupport.modelDir.path],
                           contains: "/nonexistent/RTE/train.tsv")
    try assertOneLineError(["train", "--task", "rte", "--optimizer", "adam"], contains: "--optimizer must be adamw or sgd")
    try assertOneLineError(["grid", "--preset", "huge"], contains: "--preset must be quick or paper")
  }
}

import Foundation
import XCTest
@testable import PETL

/// The tokenizer against HuggingFace (fixtures from `reference/tokenizer_fixtures.py`) on every GLUE
/// text, on readable tricky cases and on every Unicode code point; plus unit tests on a tiny vocabulary.
final class TokenizerTests: XCTestCase {
  static let fixtureDir = TestSupport.fixtures.appendingPathComponent("tokenizer")

  /// The real tokenizer; fails (not skips) when the model folder is missing.
  private func realTokenizer(file: StaticString = #filePath, line: UInt = #line) throws -> BertTokenizer {
    let vocab = TestSupport.modelDir.appendingPathComponent("vocab.txt")
    guard FileManager.default.fileExists(atPath: vocab.path) else {
      XCTFail("\(vocab.path) missing: run launch/setup", file: file, line: line)
      throw PETLError("model missing")
    }
    return try BertTokenizer(modelDirectory: TestSupport.modelDir)
  }

  private func fixtureLines(_ name: String) throws -> [Substring] {
    let url = Self.fixtureDir.appendingPathComponent(name)
    let text = try String(contentsOf: url, encoding: .utf8)
    return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { $0 }
  }

  // MARK: HuggingFace equality

  /// Task name, text columns (0-based), header row.
  static let glueTasks: [(String, [Int], Bool)] = [
    ("CoLA", [3], false), ("MRPC", [3, 4], true), ("RTE", [1, 2], true),
    ("WNLI", [1, 2], true), ("STS-B", [7, 8], true),
  ]

  /// Rows of a GLUE TSV split on `\n` and `\t` only (a header's UTF-8 BOM is part of the dropped row).
  private func tsvRows(_ url: URL, columns: [Int], header: Bool) throws -> [[String]] {
    guard let data = FileManager.default.contents(atPath: url.path) else {
      XCTFail("\(url.path) missing: run launch/setup")
      throw PETLError("GLUE missing")
    }
    var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    if lines.last?.isEmpty == true { lines.removeLast() }
    if header { lines.removeFirst() }
    return try lines.enumerated().map { (i, bytes) in
      let fields = String(decoding: bytes, as: UTF8.self).split(separator: "\t", omittingEmptySubsequences: false)
      guard fields.count > columns.max()! else { throw PETLError("\(url.path): row \(i + 1) too short") }
      return columns.map { String(fields[$0]) }
    }
  }

  func testEveryGLUETextMatchesHuggingFace() throws {
    let tokenizer = try realTokenizer()
    var checked = 0
    for (task, columns, header) in Self.glueTasks {
      for split in ["train", "dev"] {
        let name = "\(task)-\(split)"
        let rows = try tsvRows(TestSupport.glueDir.appendingPathComponent("\(task)/\(split).tsv"),
                               columns: columns, header: header)
        let expected = try fixtureLines("\(name).hashes")
        XCTAssertEqual(rows.count, expected.count, "\(name): row count differs from the fixture")
        var mismatches = 0
        for (i, (texts, line)) in zip(rows, expected).enumerated() {
          let want = line.split(separator: " ").map(String.init)
          let fed = tokenizer.encode(texts[0], texts.count > 1 ? texts[1] : nil, maxLength: 128)
          var got = [hash(fed.inputIds)]
          for t in texts { got.append(hash(tokenizer.encode(t, maxLength: 512).inputIds)) }
          if got != want {
            mismatches += 1
            if mismatches <= 3 {
              XCTFail("\(name).tsv row \(i + 1): hashes \(got) != HF \(want); texts \(texts); tokens "
                + "\(texts.map { tokenizer.tokenize($0) })")
            }
          }
          checked += 1
        }
        XCTAssertEqual(mismatches, 0, "\(name): \(mismatches) of \(rows.count) rows differ from HuggingFace")
      }
    }
    XCTAssertEqual(checked, 24392)
  }

  private struct Case: Decodable {
    var a: String
    var b: String?
    var max_length: Int
    var ids: [Int32]
    var token_type_ids: [Int32]
    var tokens: [String]
  }

  func testReadableCasesMatchHuggingFace() throws {
    let tokenizer = try realTokenizer()
    let lines = try fixtureLines("cases.jsonl")
    XCTAssertEqual(lines.count, 30)
    for line in lines {
      let c = try JSONDecoder().decode(Case.self, from: Data(line.utf8))
      let e = tokenizer.encode(c.a, c.b, maxLength: c.max_length)
      XCTAssertEqual(e.inputIds, c.ids, "\(c.a.debugDescription) / \(String(describing: c.b)) @\(c.max_length)")
      XCTAssertEqual(e.tokenTypeIds, c.token_type_ids, "token types of \(c.a.debugDescription)")
      XCTAssertEqual(e.inputIds.count, e.tokenTypeIds.count)
      XCTAssertLessThanOrEqual(e.inputIds.count, c.max_length)
      let tokens = e.inputIds.map { tokenizer.token(for: $0) }
      XCTAssertEqual(tokens, c.tokens)
    }
  }

  /// Every code point c (surrogates excluded) as "x" + c + "y", hashed per block of 256.
  func testEveryCodePointMatchesHuggingFace() throws {
    let tokenizer = try realTokenizer()
    var differing: [String] = []
    for line in try fixtureLines("unicode-sweep.hashes") {
      let parts = line.split(separator: " ")
      let start = UInt32(parts[0], radix: 16)!
      let lists = (start..<start + 256).compactMap(Unicode.Scalar.init).map { s in
        tokenizer.encode("x\(Character(s))y").inputIds.map(String.init).joined(separator: " ")
      }
      if fnv1a64Hex(lists.joined(separator: "\n")) != parts[1] { differing.append(String(parts[0])) }
    }
    XCTAssertEqual(differing, [], "blocks of 256 code points that tokenize differently from HuggingFace")
  }

  private func hash(_ ids: [Int32]) -> String { fnv1a64Hex(ids.map(String.init).joined(separator: " ")) }
}

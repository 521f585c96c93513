import Foundation
import XCTest
@testable import PETLText
import PETLSupport

/// The checks every tokenizer shares against HuggingFace's fixtures in a folder (written by
/// `reference/tokenizer_fixtures.py` for WordPiece and `reference/bpe_fixtures.py` for byte-level
/// BPE, both through `reference/glue_text_hashes.py`): every text of the ten local GLUE files, every
/// code point, and readable cases.
struct HuggingFaceTokenizerFixtures {
  let tokenizer: any Tokenizer
  let dir: URL

  /// Task folder, text columns (0-based), header row.
  static let glueTasks: [(String, [Int], Bool)] = [
    ("CoLA", [3], false), ("MRPC", [3, 4], true), ("RTE", [1, 2], true),
    ("WNLI", [1, 2], true), ("STS-B", [7, 8], true),
  ]

  func lines(_ name: String) throws -> [Substring] {
    let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
    return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { $0 }
  }

  /// FNV-1a 64 of the ids joined by single spaces, as the fixture scripts hash them.
  static func hash(_ ids: [Int32]) -> String { fnv1a64Hex(ids.map(String.init).joined(separator: " ")) }

  /// Rows of a GLUE TSV split on `\n` and `\t` only (a header's UTF-8 BOM is part of the dropped
  /// row); fails, not skips, when the file is missing.
  static func tsvRows(_ url: URL, columns: [Int], header: Bool) throws -> [[String]] {
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

  /// `<TASK>-<split>.hashes`: per row, the ids the task feeds the model (max length 128) and each
  /// text's alone (512), for all 24,392 rows of the local GLUE files.
  func checkEveryGLUEText(file: StaticString = #filePath, line: UInt = #line) throws {
    var checked = 0
    for (task, columns, header) in Self.glueTasks {
      for split in ["train", "dev"] {
        let name = "\(task)-\(split)"
        let rows = try Self.tsvRows(TestSupport.glueDir.appendingPathComponent("\(task)/\(split).tsv"),
                                    columns: columns, header: header)
        let expected = try lines("\(name).hashes")
        XCTAssertEqual(rows.count, expected.count, "\(name): row count differs from the fixture", file: file, line: line)
        var mismatches = 0
        for (i, (texts, row)) in zip(rows, expected).enumerated() {
          let want = row.split(separator: " ").map(String.init)
          let fed = tokenizer.encode(texts[0], texts.count > 1 ? texts[1] : nil, maxLength: 128)
          var got = [Self.hash(fed.inputIds)]
          for t in texts { got.append(Self.hash(tokenizer.encode(t, maxLength: 512).inputIds)) }
          if got != want {
            mismatches += 1
            if mismatches <= 3 {
              XCTFail("\(name).tsv row \(i + 1): hashes \(got) != HF \(want); texts \(texts); tokens "
                + "\(texts.map { tokenizer.tokenize($0) })", file: file, line: line)
            }
          }
          checked += 1
        }
        XCTAssertEqual(mismatches, 0, "\(name): \(mismatches) of \(rows.count) rows differ from HuggingFace", file: file, line: line)
      }
    }
    XCTAssertEqual(checked, 24392, file: file, line: line)
  }

  /// `unicode-sweep.hashes`: every code point c (surrogates excluded) as "x" + c + "y", hashed per
  /// block of 256.
  func checkEveryCodePoint(file: StaticString = #filePath, line: UInt = #line) throws {
    var differing: [String] = []
    let blocks = try lines("unicode-sweep.hashes")
    XCTAssertEqual(blocks.count, 4344, file: file, line: line)
    for block in blocks {
      let parts = block.split(separator: " ")
      let start = UInt32(parts[0], radix: 16)!
      let lists = (start..<start + 256).compactMap(Unicode.Scalar.init).map { s in
        tokenizer.encode("x\(Character(s))y", maxLength: 128).inputIds.map(String.init).joined(separator: " ")
      }
      if fnv1a64Hex(lists.joined(separator: "\n")) != parts[1] { differing.append(String(parts[0])) }
    }
    XCTAssertEqual(differing, [], "blocks of 256 code points that tokenize differently from HuggingFace", file: file, line: line)
  }

  private struct Case: Decodable {
    var a: String
    var b: String?
    var max_length: Int
    var ids: [Int32]
    var token_type_ids: [Int32]
    var tokens: [String]
  }

  /// A readable-cases file: ids, token types and tokens of each case as HuggingFace gave them.
  func checkCases(_ name: String, count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
    let cases = try lines(name)
    XCTAssertEqual(cases.count, count, file: file, line: line)
    for text in cases {
      let c = try JSONDecoder().decode(Case.self, from: Data(text.utf8))
      let e = tokenizer.encode(c.a, c.b, maxLength: c.max_length)
      let label = "\(name): \(c.a.debugDescription) / \(String(describing: c.b?.debugDescription)) @\(c.max_length)"
      XCTAssertEqual(e.inputIds, c.ids, label, file: file, line: line)
      XCTAssertEqual(e.tokenTypeIds, c.token_type_ids, "token types of \(label)", file: file, line: line)
      XCTAssertLessThanOrEqual(e.inputIds.count, c.max_length, label, file: file, line: line)
      XCTAssertEqual(e.inputIds.map { tokenizer.token(for: $0) }, c.tokens, label, file: file, line: line)
    }
  }
}

import Foundation
import XCTest
@testable import PETLKernels
@testable import PETLText

/// The byte-level BPE tokenizer against transformers' `RobertaTokenizer` (fixtures from
/// `reference/bpe_fixtures.py`, on the vocabulary of `reference/bpe_vocab.py`): every text of the ten
/// local GLUE files, every Unicode code point, and readable tricky cases. Its name contains
/// "TokenizerTests" so the debug pass (`--skip TokenizerTests`) leaves these long checks to release;
/// the unit tests are in `BPETokenizerUnitTests`.
final class BPETokenizerTests: XCTestCase {
  static let fixtureDir = TestSupport.fixtures.appendingPathComponent("bpe")

  /// The tokenizer of the fixture folder (vocab.json and merges.txt, as a RoBERTa hub folder has them).
  private func fixtureTokenizer() throws -> ByteLevelBPETokenizer {
    try ByteLevelBPETokenizer(modelDirectory: Self.fixtureDir)
  }

  private func fixtureLines(_ name: String) throws -> [Substring] {
    let text = try String(contentsOf: Self.fixtureDir.appendingPathComponent(name), encoding: .utf8)
    return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { $0 }
  }

  private func hash(_ ids: [Int32]) -> String { fnv1a64Hex(ids.map(String.init).joined(separator: " ")) }

  /// Task name, text columns (0-based), header row.
  static let glueTasks: [(String, [Int], Bool)] = [
    ("CoLA", [3], false), ("MRPC", [3, 4], true), ("RTE", [1, 2], true),
    ("WNLI", [1, 2], true), ("STS-B", [7, 8], true),
  ]

  /// Rows of a GLUE TSV split on `\n` and `\t` only (a header's UTF-8 BOM is part of the dropped
  /// row); fails, not skips, when the file is missing.
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
    let tokenizer = try fixtureTokenizer()
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

  /// Every code point c (surrogates excluded) as "x" + c + "y", hashed per block of 256: the
  /// pre-tokenizer's letter / number / white-space classes and the UTF-8 bytes of every scalar.
  func testEveryCodePointMatchesHuggingFace() throws {
    let tokenizer = try fixtureTokenizer()
    var differing: [String] = []
    let lines = try fixtureLines("unicode-sweep.hashes")
    XCTAssertEqual(lines.count, 4344)
    for line in lines {
      let parts = line.split(separator: " ")
      let start = UInt32(parts[0], radix: 16)!
      let lists = (start..<start + 256).compactMap(Unicode.Scalar.init).map { s in
        tokenizer.encode("x\(Character(s))y").inputIds.map(String.init).joined(separator: " ")
      }
      if fnv1a64Hex(lists.joined(separator: "\n")) != parts[1] { differing.append(String(parts[0])) }
    }
    XCTAssertEqual(differing, [], "blocks of 256 code points that tokenize differently from HuggingFace")
  }

  /// The pre-tokenizer's pieces of a probe that puts each code point after a letter, a digit,
  /// punctuation and spaces, hashed per block of 256 as `tokenizers`' `ByteLevel` pre-tokenizer gives
  /// them: checks the letter / number / white-space classes, which the ids of "x" + c + "y" mostly
  /// cannot see (no merge crosses the piece boundaries there).
  func testPreTokenizerClassesMatchOniguruma() throws {
    func probe(_ c: String) -> String { "a\(c)1\(c),\(c) \(c)b \(c)  \(c)\t\(c)" }
    var differing: [String] = []
    let lines = try fixtureLines("pretokenizer-sweep.hashes")
    XCTAssertEqual(lines.count, 4344)
    for line in lines {
      let parts = line.split(separator: " ")
      let start = UInt32(parts[0], radix: 16)!
      let lists = (start..<start + 256).compactMap(Unicode.Scalar.init).map { s -> String in
        let text = Array(probe(String(Character(s))).unicodeScalars)
        var pieces: [String] = []
        BPEPreTokenizer.forEachPiece(text, BPEPreTokenizer.classes(text), in: 0..<text.count) { r in
          pieces.append(ByteLevelAlphabet.spelling(String(String.UnicodeScalarView(text[r])).utf8))
        }
        return pieces.joined(separator: " ")
      }
      if fnv1a64Hex(lists.joined(separator: "\n")) != parts[1] { differing.append(String(parts[0])) }
    }
    XCTAssertEqual(differing, [], "blocks of 256 code points that pre-tokenize differently from tokenizers")
  }

  private struct Case: Decodable {
    var a: String
    var b: String?
    var max_length: Int
    var ids: [Int32]
    var token_type_ids: [Int32]
    var tokens: [String]
  }

  private func checkCases(_ name: String, count: Int, _ tokenizer: ByteLevelBPETokenizer) throws {
    let lines = try fixtureLines(name)
    XCTAssertEqual(lines.count, count)
    for line in lines {
      let c = try JSONDecoder().decode(Case.self, from: Data(line.utf8))
      let e = tokenizer.encode(c.a, c.b, maxLength: c.max_length)
      let label = "\(name): \(c.a.debugDescription) / \(String(describing: c.b?.debugDescription)) @\(c.max_length)"
      XCTAssertEqual(e.inputIds, c.ids, label)
      XCTAssertEqual(e.tokenTypeIds, c.token_type_ids, "token types of \(label)")
      XCTAssertLessThanOrEqual(e.inputIds.count, c.max_length)
      XCTAssertEqual(e.inputIds.map { tokenizer.token(for: $0) }, c.tokens, label)
    }
  }

  func testReadableCasesMatchHuggingFace() throws {
    try checkCases("cases.jsonl", count: 40, try fixtureTokenizer())
  }

  /// A hub folder whose tokenizer.json gives `<mask>` lstrip, as roberta-base's does. Only the
  /// `added_tokens` part is read, so the test writes just that; the fixture script gave HuggingFace
  /// the full file with the same flags.
  func testMaskLstripFromTokenizerJSONMatchesHuggingFace() throws {
    let dir = try temporaryFolder("bpe-hub")
    for name in ["vocab.json", "merges.txt"] {
      try FileManager.default.copyItem(at: Self.fixtureDir.appendingPathComponent(name),
                                       to: dir.appendingPathComponent(name))
    }
    let added = ByteLevelBPETokenizer.specialTokens.enumerated().map { id, content in
      #"{"id": \#(id), "content": "\#(content)", "single_word": false, "lstrip": \#(content == "<mask>"), "#
        + #""rstrip": false, "normalized": false, "special": true}"#
    }
    try #"{"added_tokens": [\#(added.joined(separator: ", "))]}"#
      .write(to: dir.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
    try checkCases("cases-mask-lstrip.jsonl", count: 8, try ByteLevelBPETokenizer(modelDirectory: dir))
  }
}

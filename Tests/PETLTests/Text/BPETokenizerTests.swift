import Foundation
import XCTest
@testable import PETLText
import PETLSupport

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

  private func fixtures() throws -> HuggingFaceTokenizerFixtures {
    HuggingFaceTokenizerFixtures(tokenizer: try fixtureTokenizer(), dir: Self.fixtureDir)
  }

  func testEveryGLUETextMatchesHuggingFace() throws { try fixtures().checkEveryGLUEText() }

  /// Every code point c (surrogates excluded) as "x" + c + "y", hashed per block of 256: the
  /// pre-tokenizer's letter / number / white-space classes and the UTF-8 bytes of every scalar.
  func testEveryCodePointMatchesHuggingFace() throws { try fixtures().checkEveryCodePoint() }

  /// The pre-tokenizer's pieces of a probe that puts each code point after a letter, a digit,
  /// punctuation and spaces, hashed per block of 256 as `tokenizers`' `ByteLevel` pre-tokenizer gives
  /// them: checks the letter / number / white-space classes, which the ids of "x" + c + "y" mostly
  /// cannot see (no merge crosses the piece boundaries there).
  func testPreTokenizerClassesMatchOniguruma() throws {
    func probe(_ c: String) -> String { "a\(c)1\(c),\(c) \(c)b \(c)  \(c)\t\(c)" }
    var differing: [String] = []
    let lines = try fixtures().lines("pretokenizer-sweep.hashes")
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

  func testReadableCasesMatchHuggingFace() throws { try fixtures().checkCases("cases.jsonl", count: 40) }

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
    try HuggingFaceTokenizerFixtures(tokenizer: try ByteLevelBPETokenizer(modelDirectory: dir), dir: Self.fixtureDir)
      .checkCases("cases-mask-lstrip.jsonl", count: 8)
  }
}

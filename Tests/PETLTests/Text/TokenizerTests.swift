import Foundation
import XCTest
@testable import PETLText
import PETLSupport

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

  // MARK: HuggingFace equality

  private func fixtures() throws -> HuggingFaceTokenizerFixtures {
    HuggingFaceTokenizerFixtures(tokenizer: try realTokenizer(), dir: Self.fixtureDir)
  }

  func testEveryGLUETextMatchesHuggingFace() throws { try fixtures().checkEveryGLUEText() }

  func testReadableCasesMatchHuggingFace() throws { try fixtures().checkCases("cases.jsonl", count: 30) }

  /// Every code point c (surrogates excluded) as "x" + c + "y", hashed per block of 256.
  func testEveryCodePointMatchesHuggingFace() throws { try fixtures().checkEveryCodePoint() }

  // MARK: Unit tests on a tiny vocabulary

  static let tinyVocabulary = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "cafe", "Café", "中", "文",
    "abc", "abcd", "a", "##a", "b", "c", ",", "$", "€", "[", "]", "sep", "é", "x", "##y",
  ]

  private func tiny(lowerCase: Bool = true) throws -> BertTokenizer {
    try BertTokenizer(vocabulary: Self.tinyVocabulary, doLowerCase: lowerCase)
  }

  func testWordPieceSplitsIntoContinuationPiecesOrUnknownWord() throws {
    let t = try tiny()
    XCTAssertEqual(t.tokenize("unaffable"), ["un", "##aff", "##able"])
    XCTAssertEqual(t.tokenize("UNAFFABLE un"), ["un", "##aff", "##able", "un"])
    // One unmatched position turns the whole word into [UNK], not just the tail.
    XCTAssertEqual(t.tokenize("unaffablez"), ["[UNK]"])
    XCTAssertEqual(t.tokenize("abcd abc"), ["abcd", "abc"], "longest match first")
  }

  func testAccentsAreStrippedOnlyWhenLowerCasing() throws {
    XCTAssertEqual(try tiny().tokenize("Café CAFÉ cafe\u{301}"), ["cafe", "cafe", "cafe"])
    let cased = try tiny(lowerCase: false)
    XCTAssertEqual(cased.tokenize("Café"), ["Café"])
    XCTAssertEqual(cased.tokenize("CAFE"), ["[UNK]"])
    // Lookups compare bytes like HuggingFace: a decomposed é is not the vocabulary's precomposed é.
    XCTAssertEqual(cased.tokenize("\u{E9} e\u{301}"), ["é", "[UNK]"])
  }

  func testCJKIdeographsAreSeparateWords() throws {
    XCTAssertEqual(try tiny().tokenize("abc中文abc"), ["abc", "中", "文", "abc"])
  }

  func testControlCharactersVanishAndWhitespaceSeparates() throws {
    let t = try tiny()
    XCTAssertEqual(t.tokenize("ab\u{0}c\u{200B}d\u{FFFD}"), ["abcd"])
    XCTAssertEqual(t.tokenize("a\tb\u{00A0}c\u{2028}abc\r\n"), ["a", "b", "c", "abc"])
    XCTAssertEqual(t.tokenize(" \t\n"), [])
  }

  func testPunctuationIsIsolatedButOtherSymbolsAreNot() throws {
    let t = try tiny()
    XCTAssertEqual(t.tokenize("a,b$c"), ["a", ",", "b", "$", "c"])
    XCTAssertEqual(t.tokenize("a€"), ["[UNK]"], "€ is a currency symbol, not punctuation: it stays in the word")
    XCTAssertEqual(t.tokenize("€"), ["€"])
  }

  func testWordsLongerThan100ScalarsAreUnknown() throws {
    let t = try tiny()
    XCTAssertEqual(t.tokenize(String(repeating: "a", count: 100)), ["a"] + Array(repeating: "##a", count: 99))
    XCTAssertEqual(t.tokenize(String(repeating: "a", count: 101) + " b"), ["[UNK]", "b"])
  }

  func testSpecialTokensMatchInRawTextOnly() throws {
    let t = try tiny()
    XCTAssertEqual(t.tokenize("x[SEP]b"), ["x", "[SEP]", "b"])
    XCTAssertEqual(t.tokenize("[sep]"), ["[", "sep", "]"])
    XCTAssertEqual(t.tokenize("[SEP"), ["[", "sep"], "an incomplete special token is ordinary text")
  }

  func testEncodeLaysOutSegmentsAndTokenTypes() throws {
    let t = try tiny()
    XCTAssertEqual(t.encode("abc b"), Encoding(inputIds: [2, 12, 16, 3], tokenTypeIds: [0, 0, 0, 0]))
    XCTAssertEqual(t.encode("abc", "b c"), Encoding(inputIds: [2, 12, 3, 16, 17, 3], tokenTypeIds: [0, 0, 0, 1, 1, 1]))
    XCTAssertEqual(t.encode("abc", ""), Encoding(inputIds: [2, 12, 3, 3], tokenTypeIds: [0, 0, 0, 1]))
    XCTAssertEqual(t.encode("a b c a b", maxLength: 4).inputIds, [2, 14, 16, 3])
    XCTAssertEqual(t.padId, 0)
    XCTAssertEqual(t.vocabularySize, Self.tinyVocabulary.count)
  }

  /// Lengths observed from `tokenizers` (budget = max_length - 3): the shorter text keeps up to half,
  /// and on a tie the odd token goes to the second text.
  func testLongestFirstTruncationMatchesHuggingFaceTieBreaking() throws {
    XCTAssertEqual(longestFirstLengths(1, 1, budget: 1).0, 0)
    XCTAssertEqual(longestFirstLengths(1, 1, budget: 1).1, 1)
    let cases: [(Int, Int, Int, Int, Int)] = [
      (2, 1, 1, 1, 0), (3, 2, 4, 2, 2), (4, 1, 4, 3, 1), (1, 11, 4, 1, 3), (10, 10, 5, 2, 3),
      (10, 9, 5, 3, 2), (3, 3, 6, 3, 3), (7, 2, 5, 3, 2), (0, 9, 4, 0, 4),
    ]
    for (n1, n2, budget, k1, k2) in cases {
      let (g1, g2) = longestFirstLengths(n1, n2, budget: budget)
      XCTAssertEqual([g1, g2], [k1, k2], "n1 \(n1) n2 \(n2) budget \(budget)")
    }
    let t = try tiny()
    let e = t.encode("a a a a a a a a a a", "b b b b b b b b b b", maxLength: 8)
    XCTAssertEqual(e.inputIds, [2, 14, 14, 3, 16, 16, 16, 3])
    XCTAssertEqual(e.tokenTypeIds, [0, 0, 0, 0, 1, 1, 1, 1])
  }

  func testVocabularyWithoutASpecialTokenIsRejected() throws {
    for missing in ["[UNK]", "[CLS]", "[SEP]", "[PAD]"] {
      let vocab = Self.tinyVocabulary.filter { $0 != missing }
      XCTAssertThrowsError(try BertTokenizer(vocabulary: vocab, doLowerCase: true)) { error in
        XCTAssertEqual((error as? PETLError)?.message, "vocabulary: vocabulary has no \(missing) token")
      }
    }
  }

  func testModelDirectoryErrorsNameTheFile() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let vocabPath = dir.appendingPathComponent("vocab.txt")
    XCTAssertThrowsError(try BertTokenizer(modelDirectory: dir)) { error in
      XCTAssertEqual((error as? PETLError)?.message, "\(vocabPath.path): cannot read vocabulary file")
    }
    try "[PAD]\n[UNK]\n[CLS]\nhello\n".write(to: vocabPath, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try BertTokenizer(modelDirectory: dir)) { error in
      XCTAssertEqual((error as? PETLError)?.message, "\(vocabPath.path): vocabulary has no [SEP] token")
    }
    try "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nHello\r\n".write(to: vocabPath, atomically: true, encoding: .utf8)
    let lower = try BertTokenizer(modelDirectory: dir)
    XCTAssertTrue(lower.doLowerCase, "no tokenizer_config.json: lower-case by default")
    XCTAssertEqual(lower.vocabularySize, 5)
    let config = dir.appendingPathComponent("tokenizer_config.json")
    try #"{"do_lower_case": false}"#.write(to: config, atomically: true, encoding: .utf8)
    let cased = try BertTokenizer(modelDirectory: dir)
    XCTAssertFalse(cased.doLowerCase)
    XCTAssertEqual(cased.tokenize("Hello"), ["Hello"])
    try "{not json".write(to: config, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try BertTokenizer(modelDirectory: dir)) { error in
      XCTAssertEqual((error as? PETLError)?.message, "\(config.path): not a valid JSON object")
    }
    try #"{"do_lower_case": "yes"}"#.write(to: config, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try BertTokenizer(modelDirectory: dir)) { error in
      XCTAssertEqual((error as? PETLError)?.message, "\(config.path): do_lower_case must be true or false")
    }
  }

  /// In a model folder (config.json beside vocab.txt) every id must index the word-embedding table.
  func testVocabularyMustFitTheModelsVocabSize() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try Data(contentsOf: TestSupport.modelDir.appendingPathComponent("config.json"))
      .write(to: dir.appendingPathComponent("config.json"))  // vocab_size 30522
    let vocabPath = dir.appendingPathComponent("vocab.txt")
    let tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + (4..<30522).map { "t\($0)" }
    try (tokens.joined(separator: "\n") + "\n").write(to: vocabPath, atomically: true, encoding: .utf8)
    XCTAssertEqual(try BertTokenizer(modelDirectory: dir).vocabularySize, 30522)
    // one token more: id 30522 would read past the table
    try (tokens.joined(separator: "\n") + "\nextra\n").write(to: vocabPath, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try BertTokenizer(modelDirectory: dir)) { error in
      XCTAssertEqual((error as? PETLError)?.message, "\(vocabPath.path): 30523 tokens but config.json vocab_size is 30522")
    }
    XCTAssertNoThrow(try BertTokenizer(modelDirectory: dir, config: nil), "no config: a tokenizer alone")
  }
}

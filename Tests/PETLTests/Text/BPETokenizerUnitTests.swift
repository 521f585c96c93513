import Foundation
import XCTest
@testable import PETLText
import PETLSupport

/// The byte-level BPE tokenizer on a tiny vocabulary: merge order, the byte alphabet, added-token
/// splitting, the RoBERTa layout and the errors for bad files. Every expected id list was produced by
/// transformers 5.24's `RobertaTokenizer` on the same vocabulary and merges. Fast, so it also runs in
/// the debug pass (whose `--skip TokenizerTests` skips the HuggingFace-wide `BPETokenizerTests`).
final class BPETokenizerUnitTests: XCTestCase {
  /// ids 0-4 RoBERTa's specials; "Ġ" is the space byte, "Ċ" newline, "ĉ" tab, "Ã" "©" the two
  /// bytes of "é" (U+00E9 is C3 A9 in UTF-8).
  static let vocabulary = [
    "<s>", "<pad>", "</s>", "<unk>", "<mask>", "a", "b", "c", "Ġ", "ab", "bc", "abc", "Ġa", "aa", "aaa",
    "<", "s", ">", "a<s", "Ã", "©", "Ã©", "Ċ", "ĉ",
  ]
  static let merges = [("b", "c"), ("a", "b"), ("a", "bc"), ("Ġ", "a"), ("a", "a"), ("aa", "a"), ("Ã", "©")]

  private func tiny(merges: [(String, String)] = merges, added: [BPEAddedToken] = []) throws -> ByteLevelBPETokenizer {
    try ByteLevelBPETokenizer(vocabulary: Self.vocabulary, merges: merges, addedTokens: added)
  }

  // MARK: BPE merges

  func testMergesApplyLowestRankFirstThenLeftmost() throws {
    let t = try tiny()
    // "b c" (rank 0) before "a b" (rank 1); then "a bc" gives abc.
    XCTAssertEqual(t.tokenize("abc"), ["abc"])
    XCTAssertEqual(t.tokenize("abcabc"), ["abc", "abc"])
    // Equal ranks merge leftmost first: a a|a a -> aa aa; and "aa a" only exists once "a a" has run.
    XCTAssertEqual(t.tokenize("aaaa"), ["aa", "aa"])
    XCTAssertEqual(t.tokenize("aaa"), ["aaa"])
    // The ranks decide, not the list of merges a token could come from: with "a b" first, "abc"
    // stops at ab + c because no merge joins "ab" and "c".
    let abFirst = try tiny(merges: [("a", "b"), ("b", "c"), ("a", "bc")])
    XCTAssertEqual(abFirst.tokenize("abc"), ["ab", "c"])
  }

  func testAMergeListedTwiceKeepsItsLastRank() throws {
    XCTAssertEqual(try tiny(merges: [("a", "b"), ("b", "c"), ("a", "bc"), ("a", "b")]).tokenize("abc"), ["abc"])
    XCTAssertEqual(try tiny(merges: [("b", "c"), ("a", "b"), ("a", "bc"), ("b", "c")]).tokenize("abc"), ["ab", "c"])
  }

  // MARK: Byte-level alphabet

  func testByteAlphabetIsGPT2s() {
    let map = ByteLevelAlphabet.characters
    XCTAssertEqual(Set(map).count, 256)
    XCTAssertEqual(map[0x20], "\u{120}")  // Ġ
    XCTAssertEqual(map[0x0A], "\u{10A}")  // Ċ
    XCTAssertEqual(map[0x09], "\u{109}")  // ĉ
    XCTAssertEqual(map[0x00], "\u{100}")
    XCTAssertEqual(map[0x7F], "\u{121}")
    XCTAssertEqual(map[0xA0], "\u{142}")
    XCTAssertEqual(map[0xAD], "\u{143}")
    XCTAssertEqual(map[0x21], "!")
    XCTAssertEqual(map[0xE9], "\u{E9}")
    XCTAssertEqual(ByteLevelAlphabet.spelling(Array("é €".utf8)), "Ã©ĠâĤ¬")
  }

  func testTextIsTokenizedAsUTF8BytesAndMissingBytesAreDropped() throws {
    let t = try tiny()
    XCTAssertEqual(t.tokenize("é"), ["Ã©"])
    XCTAssertEqual(t.tokenize("a\nb\tc"), ["a", "Ċ", "b", "ĉ", "c"])
    // RoBERTa's BPE has no unknown token: a byte whose token is missing vanishes, even <unk> is not
    // emitted, and the bytes around it can then merge.
    XCTAssertEqual(t.tokenize("a z b"), ["a", "Ġ", "Ġ", "b"])
    XCTAssertEqual(t.tokenize("xy"), [])
    XCTAssertEqual(t.tokenize("a€b"), ["a", "b"])
    XCTAssertEqual(t.tokenize(" a"), ["Ġa"])
  }

  // MARK: Pre-tokenization

  /// Pieces of the GPT-2 pattern, spelt back as text.
  private func pieces(_ text: String) -> [String] {
    let scalars = Array(text.unicodeScalars)
    var out: [String] = []
    BPEPreTokenizer.forEachPiece(scalars, BPEPreTokenizer.classes(scalars), in: 0..<scalars.count) { r in
      out.append(String(String.UnicodeScalarView(scalars[r])))
    }
    return out
  }

  func testPreTokenizerFollowsTheGPT2Pattern() {
    XCTAssertEqual(pieces("I'm you're they've it's 'S"), ["I", "'m", " you", "'re", " they", "'ve", " it", "'s", " '", "S"])
    XCTAssertEqual(pieces("a  b"), ["a", " ", " b"])
    XCTAssertEqual(pieces("a \tb"), ["a", " ", "\t", "b"])
    XCTAssertEqual(pieces("end  "), ["end", "  "])
    XCTAssertEqual(pieces("x1,234.5%y"), ["x", "1", ",", "234", ".", "5", "%", "y"])
    XCTAssertEqual(pieces("a\u{A0}b c\u{3000}d"), ["a", "\u{A0}", "b", " c", "\u{3000}", "d"])
    XCTAssertEqual(pieces("zero\u{200B}width"), ["zero", "\u{200B}", "width"], "U+200B is not white space")
    XCTAssertEqual(pieces("中文 text ½"), ["中文", " text", " ½"])
  }

  // MARK: Added tokens

  func testSpecialTokensAreSplitFromTheRawText() throws {
    let t = try tiny()
    XCTAssertEqual(t.tokenize("a<s>b"), ["a", "<s>", "b"])
    XCTAssertEqual(t.tokenize("<s><mask></s>"), ["<s>", "<mask>", "</s>"])
    XCTAssertEqual(t.tokenize("<s"), ["<", "s"], "an incomplete special token is ordinary text")
    XCTAssertEqual(t.tokenize("x<pad>y<unk>"), ["<pad>", "<unk>"])
    // Without a tokenizer.json no added token strips white space.
    XCTAssertEqual(t.tokenize("a <mask>"), ["a", "Ġ", "<mask>"])
  }

  func testLstripAndRstripTakeTheWhiteSpaceAround() throws {
    let mask = BPEAddedToken(content: "<mask>", id: 4, lstrip: true, rstrip: true)
    let t = try tiny(added: [mask])
    XCTAssertEqual(t.tokenize("a  <mask>  b"), ["a", "<mask>", "b"])
    XCTAssertEqual(t.tokenize("a \t<mask> <mask>\tb"), ["a", "<mask>", "<mask>", "b"])
    XCTAssertEqual(t.addedTokens.first { $0.content == "<mask>" }, mask)
  }

  /// Tokens with `normalized` false are split out first; a normalized token only matches in what is
  /// left, even where it would start earlier.
  func testNormalizedAddedTokensMatchInASecondPass() throws {
    let normalized = try tiny(added: [BPEAddedToken(content: "a<s", id: 18, normalized: true)])
    XCTAssertEqual(normalized.tokenize("a<s>"), ["a", "<s>"])
    XCTAssertEqual(normalized.tokenize("xa<sb"), ["a<s", "b"])
    let raw = try tiny(added: [BPEAddedToken(content: "a<s", id: 18)])
    XCTAssertEqual(raw.tokenize("a<s>"), ["a<s", ">"], "one pass: the leftmost match wins")
  }

  // MARK: RoBERTa layout

  func testEncodeLaysOutRoBERTaInputs() throws {
    let t = try tiny()
    XCTAssertEqual(t.encode("abc"), Encoding(inputIds: [0, 11, 2], tokenTypeIds: [0, 0, 0]))
    XCTAssertEqual(t.encode("ab", ""), Encoding(inputIds: [0, 9, 2, 2, 2], tokenTypeIds: [0, 0, 0, 0, 0]))
    XCTAssertEqual(t.encode("a b c a b", "c a b", maxLength: 6).inputIds, [0, 5, 2, 2, 7, 2])
    let e = t.encode("a a a a a a", "b b b b", maxLength: 8)
    XCTAssertEqual(e.inputIds, [0, 5, 12, 2, 2, 6, 8, 2])
    XCTAssertEqual(e.tokenTypeIds, [Int32](repeating: 0, count: 8))
    XCTAssertEqual(t.encode("a b c", "a b", maxLength: 4).inputIds, [0, 2, 2, 2])
    XCTAssertEqual(t.encode("a b c", maxLength: 2).inputIds, [0, 2])
    XCTAssertEqual(t.specialTokenCount(pair: false), 2)
    XCTAssertEqual(t.specialTokenCount(pair: true), 4)
    XCTAssertEqual([t.clsId, t.padId, t.sepId, t.unkId, t.maskId], [0, 1, 2, 3, 4])
    XCTAssertEqual(t.vocabularySize, Self.vocabulary.count)
    XCTAssertEqual(t.token(for: 12), "Ġa")
  }

  // MARK: Errors

  func testInMemoryVocabularyErrors() throws {
    for missing in ByteLevelBPETokenizer.specialTokens {
      let vocab = Self.vocabulary.filter { $0 != missing }
      XCTAssertThrowsError(try ByteLevelBPETokenizer(vocabulary: vocab, merges: [])) { error in
        XCTAssertEqual((error as? PETLError)?.message, "vocabulary: vocabulary has no \(missing) token")
      }
    }
    XCTAssertThrowsError(try tiny(merges: [("a", "b"), ("c", "c")])) { error in
      XCTAssertEqual((error as? PETLError)?.message, "merges[1]: merged token \"cc\" is not in the vocabulary")
    }
    XCTAssertThrowsError(try tiny(added: [BPEAddedToken(content: "<mask>", id: 5)])) { error in
      XCTAssertEqual((error as? PETLError)?.message, "vocabulary: added token \"<mask>\" does not have id 5")
    }
    XCTAssertThrowsError(try ByteLevelBPETokenizer(vocabulary: Self.vocabulary + ["a"], merges: [])) { error in
      XCTAssertEqual((error as? PETLError)?.message,
                     "vocabulary: id 24 of \"a\" is not below the token count 24 (ids must be 0 to count-1)")
    }
  }

  private func folder(vocab: String, merges: String = "#version: 0.2\nb c\na b\n",
                      tokenizerJSON: String? = nil) throws -> URL {
    let dir = try temporaryFolder("bpe")
    try vocab.write(to: dir.appendingPathComponent("vocab.json"), atomically: true, encoding: .utf8)
    try merges.write(to: dir.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
    if let tokenizerJSON {
      try tokenizerJSON.write(to: dir.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
    }
    return dir
  }

  static let vocabJSON = #"{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "a": 5, "b": 6, "c": 7, "bc": 8, "ab": 9}"#

  /// Loading the folder `dir` throws exactly `expected` (one line: `expected` has no line break).
  private func assertRefused(_ dir: URL, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(expected.contains("\n"), file: file, line: line)
    assertError(expected, file: file, line: line) { _ = try ByteLevelBPETokenizer(modelDirectory: dir) }
  }

  func testModelDirectoryLoadsAHubFolder() throws {
    // CRLF line ends and a #version line anywhere are accepted, as tokenizers reads them.
    let dir = try folder(vocab: Self.vocabJSON, merges: "#version: 0.2\r\nb c\r\n#version: x\r\na b\r\n")
    let t = try ByteLevelBPETokenizer(modelDirectory: dir)
    XCTAssertEqual(t.vocabularySize, 10)
    XCTAssertEqual(t.tokenize("abc a"), ["a", "bc", "a"])
    // JSON keys are compared as bytes: a decomposed é is a different token from the precomposed one.
    let both = #"{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "\u00e9": 5, "e\u0301": 6}"#
    let t2 = try ByteLevelBPETokenizer(modelDirectory: try folder(vocab: both, merges: ""))
    XCTAssertEqual(t2.vocabularySize, 7)
    XCTAssertEqual(t2.token(for: 5), "\u{E9}")
    XCTAssertEqual(Array(t2.token(for: 6).unicodeScalars), ["e", "\u{301}"])
  }

  func testTokenizerJSONSetsTheAddedTokensFlags() throws {
    let added = #"{"added_tokens": [{"id": 4, "content": "<mask>", "single_word": false, "lstrip": true, "#
      + #""rstrip": false, "normalized": false, "special": true}], "model": {"type": "BPE"}}"#
    let dir = try folder(vocab: Self.vocabJSON, tokenizerJSON: added)
    let t = try ByteLevelBPETokenizer(modelDirectory: dir)
    XCTAssertEqual(t.tokenize("a  <mask>"), ["a", "<mask>"])
    let path = dir.appendingPathComponent("tokenizer.json").path
    try added.replacingOccurrences(of: #""single_word": false"#, with: #""single_word": true"#)
      .write(toFile: path, atomically: true, encoding: .utf8)
    assertRefused(dir, "\(path): added_tokens[0] \"<mask>\": single_word tokens are not supported")
    try added.replacingOccurrences(of: #""id": 4"#, with: #""id": 7"#).write(toFile: path, atomically: true, encoding: .utf8)
    assertRefused(dir, "\(path): added_tokens[0] \"<mask>\" has id 7 but vocab.json gives it 4")
    try added.replacingOccurrences(of: #""lstrip": true"#, with: #""lstrip": 1"#).write(toFile: path, atomically: true, encoding: .utf8)
    assertRefused(dir, "\(path): added_tokens[0]: lstrip is a number, not true or false")
  }

  func testBadVocabularyFilesGiveOneLineErrors() throws {
    let dir = try temporaryFolder("bpe")
    let vocab = dir.appendingPathComponent("vocab.json").path
    assertRefused(dir, "\(vocab): cannot read file")
    let write = { (text: String) in try text.write(toFile: vocab, atomically: true, encoding: .utf8) }
    try "#version: 0.2\n".write(to: dir.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
    try write("{\"<s>\": 0,\n \"a\" 1}")
    assertRefused(dir, "\(vocab): not valid JSON (line 2: expected ':' after a key)")
    try write("{\"<s>\": 0")
    assertRefused(dir, "\(vocab): not valid JSON (line 1: unexpected end of file in an object)")
    try write("[\"<s>\"]")
    assertRefused(dir, "\(vocab): expected a JSON object from token to id")
    try write(#"{"<s>": 0, "a": 1.0}"#)
    assertRefused(dir, "\(vocab): token \"a\" has a number as its id, not a non-negative integer")
    try write(#"{"<s>": 0, "a": true}"#)
    assertRefused(dir, "\(vocab): token \"a\" has a boolean as its id, not a non-negative integer")
    try write(#"{"<s>": 0, "a": 0}"#)
    assertRefused(dir, "\(vocab): id 0 is given to both \"<s>\" and \"a\"")
    try write(#"{"<s>": 0, "a": 2}"#)
    assertRefused(dir, "\(vocab): id 2 of \"a\" is not below the token count 2 (ids must be 0 to count-1)")
    try write(#"{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}"#)
    assertRefused(dir, "\(vocab): vocabulary has no <mask> token")
  }

  func testBadMergesFilesGiveOneLineErrors() throws {
    let dir = try folder(vocab: Self.vocabJSON)
    let merges = dir.appendingPathComponent("merges.txt")
    let write = { (text: String) in try text.write(to: merges, atomically: true, encoding: .utf8) }
    try write("#version: 0.2\na b\n\nb c\n")
    assertRefused(dir, "\(merges.path): line 3: expected two tokens separated by one space, found \"\"")
    try write("a b c\n")
    assertRefused(dir, "\(merges.path): line 1: expected two tokens separated by one space, found \"a b c\"")
    try write("a b\na  b\n")
    assertRefused(dir, "\(merges.path): line 2: expected two tokens separated by one space, found \"a  b\"")
    try write("#version: 0.2\na q\n")
    assertRefused(dir, "\(merges.path): line 2: merge part \"q\" is not in the vocabulary")
    try write("a b\nc c\n")
    assertRefused(dir, "\(merges.path): line 2: merged token \"cc\" is not in the vocabulary")
    // A carriage return without a line feed after it is part of the token, as in tokenizers.
    try write("a b\r")
    assertRefused(dir, "\(merges.path): line 1: merge part \"b\\r\" is not in the vocabulary")
    try Data([0x61, 0x20, 0xFF, 0x0A]).write(to: merges)
    assertRefused(dir, "\(merges.path): not valid UTF-8")
    try FileManager.default.removeItem(at: merges)
    assertRefused(dir, "\(merges.path): cannot read file")
  }
}

import Foundation
import PETLSupport

/// A WordPiece vocabulary: token strings indexed by id, plus the two lookup tables WordPiece needs.
///
/// Lookups are keyed by UTF-8 bytes, not `String`: Swift compares strings by canonical equivalence, so
/// "é" and "e\u{301}" would be the same key, while HuggingFace (Rust) compares bytes.
struct Vocabulary: Sendable {
  /// Token text by id (id = line index in `vocab.txt`).
  let tokens: [String]
  /// Every token, as it must appear at the start of a word.
  let wordStart: [ArraySlice<UInt8>: Int32]
  /// Tokens that begin with `##`, keyed without the prefix: the pieces that may continue a word.
  let continuation: [ArraySlice<UInt8>: Int32]
  /// The longest token in each table, in Unicode scalars: WordPiece never needs to try a longer piece.
  let longestWordStart: Int
  let longestContinuation: Int

  static let continuationPrefix = "##"

  /// Builds the tables; as in HuggingFace's `load_vocab`, a repeated token keeps its last id.
  init(tokens: [String]) {
    self.tokens = tokens
    var start: [ArraySlice<UInt8>: Int32] = [:]
    var cont: [ArraySlice<UInt8>: Int32] = [:]
    var longestStart = 0, longestCont = 0
    start.reserveCapacity(tokens.count)
    for (id, token) in tokens.enumerated() {
      let bytes = ArraySlice(token.utf8)
      start[bytes] = Int32(id)
      longestStart = max(longestStart, token.unicodeScalars.count)
      // Compared as bytes: `String.hasPrefix` works on Characters, and "##ि" is the Characters "#",
      // "#ि" (a spacing mark joins the character before it).
      if bytes.starts(with: Vocabulary.continuationPrefix.utf8) {
        cont[bytes.dropFirst(2)] = Int32(id)
        longestCont = max(longestCont, token.unicodeScalars.count - 2)
      }
    }
    wordStart = start
    continuation = cont
    longestWordStart = longestStart
    longestContinuation = longestCont
  }

  /// Reads `vocab.txt` as `tokenizers`' `WordPiece::read_file` does (transformers 5 builds BERT's
  /// tokenizer with it): one token per `\n`-separated line, id = line index, each line's trailing
  /// white space (Unicode White_Space, so a `\r` too, as Rust's `trim_end`) removed.
  static func load(_ url: URL) throws -> Vocabulary {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw PETLError("\(url.path): cannot read vocabulary file")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw PETLError("\(url.path): vocabulary file is not valid UTF-8")
    }
    var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    if lines.last?.isEmpty == true { lines.removeLast() }
    let tokens = lines.map { line -> String in
      var scalars = Substring(decoding: line, as: UTF8.self).unicodeScalars
      while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
      return String(scalars)
    }
    if tokens.isEmpty { throw PETLError("\(url.path): vocabulary file is empty") }
    return Vocabulary(tokens: tokens)
  }

  func id(of token: String) -> Int32? { wordStart[ArraySlice(token.utf8)] }
}

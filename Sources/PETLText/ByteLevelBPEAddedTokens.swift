/// A token matched in the raw text before pre-tokenization (`tokenizers`' `AddedToken`): RoBERTa's
/// `<s>`, `<pad>`, `</s>`, `<unk>`, `<mask>`, and any other token a `tokenizer.json` declares.
public struct BPEAddedToken: Equatable, Sendable {
  public var content: String
  public var id: Int32
  /// Also takes the white space on its left (roberta-base's `tokenizer.json` sets it for `<mask>`).
  public var lstrip: Bool
  /// Also takes the white space on its right.
  public var rstrip: Bool
  /// Matched after normalization. RoBERTa has no normalizer, so it only decides the order: tokens
  /// with `normalized` false are split out first, the others then in the pieces left between them.
  public var normalized: Bool

  public init(content: String, id: Int32, lstrip: Bool = false, rstrip: Bool = false, normalized: Bool = false) {
    self.content = content
    self.id = id
    self.lstrip = lstrip
    self.rstrip = rstrip
    self.normalized = normalized
  }
}

/// Splits text on added tokens as `AddedVocabulary::extract_and_normalize` does: two passes (tokens
/// with `normalized` false, then the others in what is left), each finding the leftmost-longest
/// non-overlapping matches, widened over adjacent white space for `lstrip` / `rstrip` tokens. Works
/// on the text's UTF-8 bytes (a token matches at a scalar boundary exactly where its bytes do) and
/// hands the pieces over in order as it finds them, so the caller can stop early.
struct BPEAddedTokenSplitter: Sendable {
  /// One pass's tokens as UTF-8, longest first so the first that matches is the longest.
  private let passes: [[(text: [UInt8], token: BPEAddedToken)]]
  /// Bytes that start some token: positions that cannot start one are skipped quickly.
  private let firstBytes: [Bool]

  init(_ tokens: [BPEAddedToken]) {
    let usable = tokens.filter { !$0.content.isEmpty }
    func pass(_ normalized: Bool) -> [(text: [UInt8], token: BPEAddedToken)] {
      usable.filter { $0.normalized == normalized }
        .map { (Array($0.content.utf8), $0) }
        .sorted { $0.text.count > $1.text.count }
    }
    passes = [pass(false), pass(true)].filter { !$0.isEmpty }
    var first = [Bool](repeating: false, count: 256)
    for t in usable { first[Int(t.content.utf8.first!)] = true }
    firstBytes = first
  }

  /// A piece of the input: text to pre-tokenize (a byte range), or an added token's id.
  enum Piece {
    case text(Range<Int>)
    case token(Int32)
  }

  /// Calls `body` with the pieces of `bytes` in order until it returns false.
  func forEachPiece(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (Piece) -> Bool) {
    _ = split(bytes, 0..<bytes.count, pass: 0, body)
  }

  /// `find_matches` of pass `pass` over `range`; the text between matches goes to the next pass.
  /// Scanning resumes at a match's own end even when `rstrip` took white space beyond it, and an
  /// `lstrip` never reaches back into the previous match. Returns false once `body` has.
  private func split(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, pass: Int,
                     _ body: (Piece) -> Bool) -> Bool {
    guard !range.isEmpty else { return true }
    guard pass < passes.count else { return body(.text(range)) }
    let tokens = passes[pass]
    var startOffset = range.lowerBound
    var i = range.lowerBound
    while i < range.upperBound {
      guard firstBytes[Int(bytes[i])], let (token, length) = match(bytes, at: i, end: range.upperBound, tokens) else {
        i += 1
        continue
      }
      var start = i, stop = i + length
      if token.lstrip {
        var s = start
        while s > range.lowerBound {
          let p = scalarStart(in: bytes, before: s)
          guard scalar(in: bytes, at: p).0.properties.isWhitespace else { break }
          s = p
        }
        start = max(s, startOffset)
      }
      if token.rstrip {
        while stop < range.upperBound {
          let (c, next) = scalar(in: bytes, at: stop)
          guard c.properties.isWhitespace else { break }
          stop = next
        }
      }
      if startOffset < start, !split(bytes, startOffset..<start, pass: pass + 1, body) { return false }
      guard body(.token(token.id)) else { return false }
      startOffset = stop
      i += length
    }
    return split(bytes, startOffset..<range.upperBound, pass: pass + 1, body)
  }

  private func match(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int, end: Int,
                     _ pass: [(text: [UInt8], token: BPEAddedToken)]) -> (BPEAddedToken, Int)? {
    for (text, token) in pass where text.count <= end - i {
      var k = 0
      while k < text.count && bytes[i + k] == text[k] { k += 1 }
      if k == text.count { return (token, k) }
    }
    return nil
  }
}

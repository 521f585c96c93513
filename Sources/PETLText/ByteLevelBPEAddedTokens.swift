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
/// non-overlapping matches, widened over adjacent white space for `lstrip` / `rstrip` tokens.
struct BPEAddedTokenSplitter: Sendable {
  /// One pass's tokens as scalar arrays, longest first so the first that matches is the longest.
  private let passes: [[(text: [Unicode.Scalar], token: BPEAddedToken)]]
  /// The first scalar of every token: positions that cannot start one are skipped quickly.
  private let firstScalars: Set<Unicode.Scalar>

  init(_ tokens: [BPEAddedToken]) {
    let usable = tokens.filter { !$0.content.isEmpty }
    func pass(_ normalized: Bool) -> [(text: [Unicode.Scalar], token: BPEAddedToken)] {
      usable.filter { $0.normalized == normalized }
        .map { (Array($0.content.unicodeScalars), $0) }
        .sorted { $0.text.count > $1.text.count }
    }
    passes = [pass(false), pass(true)].filter { !$0.isEmpty }
    firstScalars = Set(usable.compactMap { $0.content.unicodeScalars.first })
  }

  /// A piece of the input: text to pre-tokenize, or an added token's id.
  enum Piece {
    case text(Range<Int>)
    case token(Int32)
  }

  /// The pieces of `text` (an array of scalars), in order.
  func split(_ text: [Unicode.Scalar]) -> [Piece] {
    var pieces: [Piece] = [.text(0..<text.count)]
    for pass in passes {
      var next: [Piece] = []
      for piece in pieces {
        guard case .text(let range) = piece, !range.isEmpty else { next.append(piece); continue }
        split(text, range, pass, into: &next)
      }
      pieces = next
    }
    return pieces
  }

  /// `find_matches` over `range`. Scanning resumes at a match's own end even when `rstrip` took
  /// white space beyond it, and an `lstrip` never reaches back into the previous match.
  private func split(_ text: [Unicode.Scalar], _ range: Range<Int>,
                     _ pass: [(text: [Unicode.Scalar], token: BPEAddedToken)], into pieces: inout [Piece]) {
    var startOffset = range.lowerBound
    var i = range.lowerBound
    while i < range.upperBound {
      guard firstScalars.contains(text[i]), let (token, length) = match(text, at: i, end: range.upperBound, pass) else {
        i += 1
        continue
      }
      var start = i, stop = i + length
      if token.lstrip {
        var s = start
        while s > range.lowerBound && text[s - 1].properties.isWhitespace { s -= 1 }
        start = max(s, startOffset)
      }
      if token.rstrip {
        while stop < range.upperBound && text[stop].properties.isWhitespace { stop += 1 }
      }
      if startOffset < start { pieces.append(.text(startOffset..<start)) }
      pieces.append(.token(token.id))
      startOffset = stop
      i += length
    }
    if startOffset < range.upperBound { pieces.append(.text(startOffset..<range.upperBound)) }
  }

  private func match(_ text: [Unicode.Scalar], at i: Int, end: Int,
                     _ pass: [(text: [Unicode.Scalar], token: BPEAddedToken)]) -> (BPEAddedToken, Int)? {
    for (scalars, token) in pass where scalars.count <= end - i {
      var k = 0
      while k < scalars.count && text[i + k] == scalars[k] { k += 1 }
      if k == scalars.count { return (token, k) }
    }
    return nil
  }
}

import Foundation
import PETLKernels

/// BERT's normaliser, pre-tokenizer (`BertPreTokenizer`: split on white space, each punctuation
/// character a word of its own) and WordPiece, run on one stretch of text (between special tokens)
/// a scalar at a time, so time is linear in the text and memory is one word.
///
/// The normaliser's NFD is done per scalar (each scalar's canonical decomposition, then every run of
/// combining marks put in canonical order by a stable sort on the combining class), which is NFD
/// of the whole text: canonical reordering never moves a mark past a starter. Foundation's NFD of a
/// long string is quadratic in it. A word longer than `WordPiece.maxInputCharsPerWord` is `[UNK]`
/// whatever its scalars, so past that only its length is counted.
struct BertWordStream {
  let normalizer: BertNormalizer
  let wordPiece: WordPiece
  /// The current word, normalised (at most `maxInputCharsPerWord` scalars are kept).
  private var word: [Unicode.Scalar] = []
  private var wordLength = 0
  /// Combining marks (class > 0) waiting for the next starter to be put in canonical order.
  private var marks: [(scalar: Unicode.Scalar, ccc: UInt8)] = []
  /// Each non-ASCII scalar seen: `nonASCII(_:)`.
  private var cache: [UInt32: (kind: ScalarKind, decomposition: [(scalar: Unicode.Scalar, ccc: UInt8)])] = [:]
  private var pieces: [Int32] = []
  /// The id of each one-scalar word seen (a single scalar is one token or `[UNK]`).
  private var singles: [UInt32: Int32] = [:]
  private var utf8: [UInt8] = []
  private var offsets: [Int] = []

  init(normalizer: BertNormalizer, wordPiece: WordPiece) {
    self.normalizer = normalizer
    self.wordPiece = wordPiece
    word.reserveCapacity(WordPiece.maxInputCharsPerWord + 1)
  }

  private static let limit = WordPiece.maxInputCharsPerWord

  /// One raw scalar of the text.
  @inline(__always)
  mutating func feed(_ s: Unicode.Scalar, into sink: inout TokenSink) {
    let v = s.value
    if v < 0x80 {
      switch asciiKinds[Int(v)] {
      case .dropped: return
      case .space: flushMarks(&sink); endWord(&sink)
      case .punctuation: flushMarks(&sink); endWord(&sink); append(s, &sink)
      case .ideograph, .other:
        if !marks.isEmpty { flushMarks(&sink) }
        appendToWord(normalizer.lowercase && v >= 0x41 && v <= 0x5A ? Unicode.Scalar(UInt8(v) + 0x20) : s)
      }
      return
    }
    let entry = nonASCII(s)
    switch entry.kind {
    case .dropped: return
    case .space: flushMarks(&sink); endWord(&sink); return
    case .ideograph: flushMarks(&sink); endWord(&sink)
    case .punctuation, .other: break
    }
    if normalizer.stripAccents {
      for (d, ccc) in entry.decomposition {
        if ccc == 0 {
          flushMarks(&sink)
          append(d, &sink)
        } else if wordLength > Self.limit {
          wordLength += 1  // already [UNK]: order and case no longer matter
        } else {
          marks.append((d, ccc))
          if wordLength + marks.count > Self.limit { wordLength += marks.count; marks.removeAll(keepingCapacity: true) }
        }
      }
    } else {
      append(s, &sink)
    }
    if entry.kind == .ideograph { flushMarks(&sink); endWord(&sink) }
  }

  /// The end of a stretch (a special token follows, or the text ends).
  mutating func finish(into sink: inout TokenSink) {
    flushMarks(&sink)
    endWord(&sink)
  }

  /// A normalised scalar after NFD and accent stripping: lower-cased, then a word character or a
  /// punctuation word.
  @inline(__always)
  private mutating func append(_ s: Unicode.Scalar, _ sink: inout TokenSink) {
    normalizer.lowercased(s) { l in
      if isPunctuation(l) {
        endWord(&sink)
        appendToWord(l)
        endWord(&sink)
      } else {
        appendToWord(l)
      }
    }
  }

  @inline(__always)
  private mutating func appendToWord(_ s: Unicode.Scalar) {
    wordLength += 1
    if wordLength <= Self.limit { word.append(s) }
  }

  private mutating func flushMarks(_ sink: inout TokenSink) {
    guard !marks.isEmpty else { return }
    // Canonical ordering: a stable sort of the run by combining class.
    let ordered = marks.enumerated().sorted { ($0.element.ccc, $0.offset) < ($1.element.ccc, $1.offset) }
    marks.removeAll(keepingCapacity: true)
    for (_, m) in ordered { append(m.scalar, &sink) }
  }

  private mutating func endWord(_ sink: inout TokenSink) {
    guard wordLength > 0 else { return }
    if wordLength > Self.limit {
      sink.append(wordPiece.unkId)
    } else if wordLength == 1 {
      // One-scalar words (punctuation, CJK ideographs) recur: their id is looked up once.
      let s = word[0].value
      if let id = singles[s] { sink.append(id) } else {
        pieces.removeAll(keepingCapacity: true)
        wordPiece.append(word[...], to: &pieces, utf8: &utf8, offsets: &offsets)
        singles[s] = pieces[0]
        sink.append(pieces[0])
      }
    } else {
      pieces.removeAll(keepingCapacity: true)
      wordPiece.append(word[...], to: &pieces, utf8: &utf8, offsets: &offsets)
      for id in pieces { sink.append(id) }
    }
    word.removeAll(keepingCapacity: true)
    wordLength = 0
  }

  /// What the normaliser does with a non-ASCII scalar, and its NFD without Mn marks (HuggingFace's
  /// categories) when accents are stripped; worked out once per scalar per stream.
  private mutating func nonASCII(_ s: Unicode.Scalar) -> (kind: ScalarKind, decomposition: [(scalar: Unicode.Scalar, ccc: UInt8)]) {
    if let e = cache[s.value] { return e }
    let kind: ScalarKind = s.value == 0xFFFD || isControl(s) ? .dropped : isWhitespace(s) ? .space
      : normalizer.handleChineseChars && isCJKIdeograph(s) ? .ideograph : .other
    let d = !normalizer.stripAccents || kind == .dropped || kind == .space ? [] :
      String(s).decomposedStringWithCanonicalMapping.unicodeScalars
        .filter { hfGeneralCategory($0) != .nonspacingMark }
        .map { ($0, UInt8(truncatingIfNeeded: $0.properties.canonicalCombiningClass.rawValue)) }
    cache[s.value] = (kind, d)
    return (kind, d)
  }
}

/// What the normaliser and pre-tokenizer do with a scalar before its decomposition.
private enum ScalarKind { case dropped, space, ideograph, punctuation, other }

private let asciiKinds: [ScalarKind] = (0..<128).map { v in
  let s = Unicode.Scalar(UInt8(v))
  if v == 0 || isControl(s) { return .dropped }
  if isWhitespace(s) { return .space }
  if isPunctuation(s) { return .punctuation }
  return .other
}

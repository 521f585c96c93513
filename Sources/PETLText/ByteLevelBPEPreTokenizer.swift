/// GPT-2's pre-tokenization, as `tokenizers`' `ByteLevel` pre-tokenizer runs it (`use_regex: true`,
/// `add_prefix_space: false`): the text is cut into the matches of
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// found left to right, each match taken by the first alternative that matches (a backtracking
/// engine, Oniguruma in `tokenizers`). Every character is a letter, a number, white space or other,
/// so the matches cover the text. Written by hand over Unicode scalars so that the classes are
/// Oniguruma's (below), not whatever tables the platform's regex engine carries.
enum BPEPreTokenizer {
  /// The four character classes the pattern distinguishes.
  enum CharClass: UInt8 {
    case letter, number, space, other
  }

  /// Oniguruma's classes in `tokenizers` 0.23: `\p{L}` and `\p{N}` are the Unicode 16.0 general
  /// categories L* and N*, `\s` is the White_Space property (which includes U+0085, U+00A0, U+2028,
  /// U+3000 but not U+200B or U+FEFF). Swift's tables may be newer, so a scalar assigned after 16.0
  /// counts as unassigned (other), as it does to Oniguruma. The sweep over every code point in
  /// `BPETokenizerTests` checks this against `tokenizers`.
  static func charClass(_ s: Unicode.Scalar) -> CharClass {
    let v = s.value
    if v < 0x80 { return asciiClasses[Int(v)] }
    let p = s.properties
    if p.isWhitespace { return .space }  // the same 25 characters in every Unicode version since 6.3
    guard let age = p.age, age.major < 16 || (age.major == 16 && age.minor == 0) else { return .other }
    switch p.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
    case .decimalNumber, .letterNumber, .otherNumber: return .number
    default: return .other
    }
  }

  private static let asciiClasses: [CharClass] = (0..<0x80).map { v -> CharClass in
    switch v {
    case 0x09...0x0D, 0x20: return .space
    case 0x30...0x39: return .number
    case 0x41...0x5A, 0x61...0x7A: return .letter
    default: return .other
    }
  }

  /// The class of every scalar of `text` (for `forEachPiece` over scalar arrays).
  static func classes(_ text: [Unicode.Scalar]) -> [CharClass] { text.map(charClass) }

  /// Calls `body` with the range of each piece of `text[range]`, in order. `classes` are those of
  /// `text`. The pattern runs on each stretch between added tokens separately, so a piece never
  /// crosses `range`'s ends.
  static func forEachPiece(_ text: [Unicode.Scalar], _ classes: [CharClass], in range: Range<Int>,
                           _ body: (Range<Int>) -> Void) {
    let t = ScalarArray(scalars: text, classes: classes)
    var i = range.lowerBound
    while i < range.upperBound {
      let end = pieceEnd(t, from: i, end: range.upperBound)
      body(i..<end)
      i = end
    }
  }

  /// The end of the match that starts at `i` (always past `i`) in a stretch ending at `n`; positions
  /// are the text's own (scalar indices, or UTF-8 byte offsets).
  static func pieceEnd<T: PreTokenizerText>(_ t: T, from i: Int, end n: Int) -> Int {
    let (first, firstClass, afterFirst) = t.at(i)
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive; all ASCII, so the next positions are i + 1, i + 2)
    if first == "'", afterFirst < n {
      let (c1, _, after1) = t.at(afterFirst)
      switch c1 {
      case "s", "t", "m", "d": return after1
      case "r", "v", "l":
        if after1 < n {
          let (c2, _, after2) = t.at(after1)
          if (c1 == "l" && c2 == "l") || (c1 != "l" && c2 == "e") { return after2 }
        }
      default: break
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020 (only that space) and then
    // the longest run of one class. The optional space is tried first; without it the match would
    // have to start at the space, which none of the three classes contains.
    var cls = firstClass, end = afterFirst
    if first == " ", afterFirst < n {
      let (_, nextClass, afterNext) = t.at(afterFirst)
      if nextClass != .space { cls = nextClass; end = afterNext }
    }
    if cls != .space {
      while end < n {
        let (_, c, next) = t.at(end)
        if c != cls { break }
        end = next
      }
      return end
    }
    // `\s+(?!\S)`: the white-space run, minus its last character when a non-space follows it (the
    // lookahead then fails at the run's end, and backtracking one character satisfies it). A run of
    // one before a non-space leaves nothing, and `\s+` takes that one character.
    var last = i, length = 1
    while end < n {
      let (_, c, next) = t.at(end)
      if c != .space { break }
      last = end; end = next; length += 1
    }
    if end == n || length == 1 { return end }
    return last
  }
}

/// A text the pre-tokenizer walks: the scalar at a position, its class, and the next position.
protocol PreTokenizerText {
  func at(_ i: Int) -> (scalar: Unicode.Scalar, cls: BPEPreTokenizer.CharClass, next: Int)
}

/// Scalars with their classes computed beforehand (the tests' probes).
struct ScalarArray: PreTokenizerText {
  let scalars: [Unicode.Scalar]
  let classes: [BPEPreTokenizer.CharClass]
  @inline(__always) func at(_ i: Int) -> (scalar: Unicode.Scalar, cls: BPEPreTokenizer.CharClass, next: Int) {
    (scalars[i], classes[i], i + 1)
  }
}

/// A string's UTF-8 bytes, classes computed as the scan reaches them: what the tokenizer walks, so
/// no per-scalar array the size of the text is made.
struct UTF8Text: PreTokenizerText {
  let bytes: UnsafeBufferPointer<UInt8>
  @inline(__always) func at(_ i: Int) -> (scalar: Unicode.Scalar, cls: BPEPreTokenizer.CharClass, next: Int) {
    let (s, next) = scalar(in: bytes, at: i)
    return (s, BPEPreTokenizer.charClass(s), next)
  }
}

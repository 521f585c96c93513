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

  /// The class of every scalar of `text`, computed once per text and shared by its segments.
  static func classes(_ text: [Unicode.Scalar]) -> [CharClass] { text.map(charClass) }

  /// Calls `body` with the range of each piece of `text[range]`, in order. `classes` are those of
  /// `text`. The pattern runs on each stretch between added tokens separately, so a piece never
  /// crosses `range`'s ends.
  static func forEachPiece(_ text: [Unicode.Scalar], _ classes: [CharClass], in range: Range<Int>,
                           _ body: (Range<Int>) -> Void) {
    var i = range.lowerBound
    while i < range.upperBound {
      let end = pieceEnd(text, classes, from: i, end: range.upperBound)
      body(i..<end)
      i = end
    }
  }

  /// The end of the match that starts at `i` (always past `i`) in a stretch ending at `n`.
  static func pieceEnd(_ s: [Unicode.Scalar], _ classes: [CharClass], from i: Int, end n: Int) -> Int {
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
    if s[i] == "'", i + 1 < n {
      switch s[i + 1] {
      case "s", "t", "m", "d": return i + 2
      case "r" where i + 2 < n && s[i + 2] == "e": return i + 3
      case "v" where i + 2 < n && s[i + 2] == "e": return i + 3
      case "l" where i + 2 < n && s[i + 2] == "l": return i + 3
      default: break
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020 (only that space) and then
    // the longest run of one class. The optional space is tried first; without it the match would
    // have to start at the space, which none of the three classes contains.
    let start = (s[i] == " " && i + 1 < n && classes[i + 1] != .space) ? i + 1 : i
    let cls = classes[start]
    if cls != .space {
      var end = start + 1
      while end < n && classes[end] == cls { end += 1 }
      return end
    }
    // `\s+(?!\S)`: the white-space run, minus its last character when a non-space follows it (the
    // lookahead then fails at the run's end, and backtracking one character satisfies it). A run of
    // one before a non-space leaves nothing, and `\s+` takes that one character.
    var end = i + 1
    while end < n && classes[end] == .space { end += 1 }
    if end == n || end - i == 1 { return end }
    return end - 1
  }
}

/// Deterministic texts of a given size for the tokenizer benchmark and the linear-time test: the
/// shapes of line a hostile or careless input can have.
package enum BenchText: String, CaseIterable, Sendable {
  /// English words with punctuation and numbers.
  case words
  /// Words with accents and combining marks (NFD and accent stripping at work).
  case accented
  /// One run of spaces.
  case spaces
  /// One word without a break.
  case word
  /// CJK ideographs and kana without spaces.
  case cjk

  /// About `bytes` bytes of UTF-8 (whole scalars), the same on every call.
  package func make(bytes: Int) -> String {
    let pieces: [String]
    switch self {
    case .words: pieces = ["the ", "film's ", "quietly ", "brilliant, ", "2,024 ", "scenes; ", "(really) ", "unbelievable. "]
    case .accented: pieces = ["café ", "naïve ", "Ångström ", "e\u{301}\u{323}te\u{301} ", "İstanbul ", "ΣΊΣΥΦΟΣ ", "résumé, "]
    case .spaces: pieces = [" "]
    case .word: pieces = ["abcdefghij"]
    case .cjk: pieces = ["中文字符", "ひらがな", "漢字。"]
    }
    var out = ""
    out.reserveCapacity(bytes + 16)
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    while out.utf8.count < bytes {
      state = state &* 6364136223846793005 &+ 1442695040888963407
      out += pieces[Int(state >> 33) % pieces.count]
    }
    while out.utf8.count > bytes { out.unicodeScalars.removeLast() }
    return out
  }
}

import Foundation

/// BERT's text normalisation as HuggingFace's `BertNormalizer` (the `tokenizers` library behind
/// transformers 5's `BertTokenizer`) configures it: clean text (drop NUL, U+FFFD and control
/// characters; white space becomes a space), space out CJK ideographs, strip accents (NFD, drop Mn
/// marks), lower-case. The order matters: lower-casing comes after stripping, so the combining dot
/// that lower-casing "İ" would produce never appears. Applied scalar by scalar (`BertWordStream`),
/// so a long line costs time and memory in proportion to its words, not to itself.
struct BertNormalizer: Sendable {
  let lowercase: Bool
  /// `strip_accents` in `tokenizer_config.json`; null (the default) follows `lowercase`.
  let stripAccents: Bool
  /// `tokenize_chinese_chars`: CJK ideographs become words of their own.
  let handleChineseChars: Bool

  init(lowercase: Bool, stripAccents: Bool? = nil, handleChineseChars: Bool = true) {
    self.lowercase = lowercase
    self.stripAccents = stripAccents ?? lowercase
    self.handleChineseChars = handleChineseChars
  }

  /// Per-scalar full lower-case mapping (Rust's `char::to_lowercase`): no context, so a final capital
  /// sigma becomes σ, not ς, as HuggingFace does.
  @inline(__always)
  func lowercased(_ s: Unicode.Scalar, _ body: (Unicode.Scalar) -> Void) {
    if !lowercase {
      body(s)
    } else if s.isASCII {
      body((0x41...0x5A).contains(s.value) ? Unicode.Scalar(UInt8(s.value) + 0x20) : s)
    } else if !s.properties.changesWhenLowercased {
      body(s)
    } else {
      for l in s.properties.lowercaseMapping.unicodeScalars { body(l) }
    }
  }
}

/// Tab, newline and carriage return count as whitespace, not control; otherwise the "Other" categories
/// Cc, Cf and Co are control characters and are dropped. Unassigned code points (Cn) are kept (they
/// become `[UNK]`): HuggingFace's Rust normalizer does so, unlike the old Python one.
func isControl(_ s: Unicode.Scalar) -> Bool {
  if s == "\t" || s == "\n" || s == "\r" { return false }
  if s.value < 0x7F { return s.value < 0x20 }
  switch hfGeneralCategory(s) {
  case .control, .format, .privateUse: return true
  default: return false
  }
}

/// Unicode White_Space (which includes tab, newline and carriage return).
func isWhitespace(_ s: Unicode.Scalar) -> Bool {
  if s.isASCII { return s == " " || (0x09...0x0D).contains(s.value) }
  return s.properties.isWhitespace
}

/// The CJK Unified Ideographs blocks BERT isolates as single-character words. Hiragana, Katakana and
/// Hangul are not in them. Extension E starts at 0x2B920 here, not 0x2B820 as in Google's BERT: that is
/// HuggingFace's Rust range, and the sweep over all code points pins it.
func isCJKIdeograph(_ s: Unicode.Scalar) -> Bool {
  switch s.value {
  case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
       0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
    return true
  default:
    return false
  }
}

/// BERT punctuation: all ASCII non-alphanumeric printables (so `$`, `+`, `^`, `` ` `` count although
/// they are symbols in Unicode) and every Unicode punctuation category (P*).
func isPunctuation(_ s: Unicode.Scalar) -> Bool {
  let v = s.value
  if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
    return true
  }
  if s.isASCII { return false }
  switch hfGeneralCategory(s) {
  case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
       .initialPunctuation, .finalPunctuation, .otherPunctuation:
    return true
  default:
    return false
  }
}

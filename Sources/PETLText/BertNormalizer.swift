import Foundation

/// BERT's text normalisation, in the order HuggingFace's `BertNormalizer` (the `tokenizers` library behind
/// transformers 5's `BertTokenizer`) applies it: clean text, space out CJK ideographs, strip accents
/// (NFD, drop Mn marks), lower-case. The order matters: lower-casing comes after stripping, so the
/// combining dot that lower-casing "İ" would produce never appears.
struct BertNormalizer: Sendable {
  let lowercase: Bool
  /// BERT strips accents exactly when it lower-cases (`strip_accents: null` in `tokenizer_config.json`).
  var stripAccents: Bool { lowercase }

  func normalize(_ text: Substring.UnicodeScalarView) -> [Unicode.Scalar] {
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(text.count + 8)
    var allASCII = true
    for s in text {
      if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
      if isWhitespace(s) { out.append(" "); continue }
      if isCJKIdeograph(s) {
        out.append(" "); out.append(s); out.append(" ")
      } else {
        out.append(s)
      }
      if !s.isASCII { allASCII = false }
    }
    if stripAccents && !allASCII { out = stripMarks(out) }
    if lowercase { out = lowercased(out, allASCII: allASCII) }
    return out
  }

  /// NFD over the whole text (so combining marks are canonically ordered exactly as in Rust), then drop
  /// every nonspacing mark (Mn).
  private func stripMarks(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
    var s = String.UnicodeScalarView()
    s.append(contentsOf: scalars)
    let nfd = String(s).decomposedStringWithCanonicalMapping.unicodeScalars
    return nfd.filter { hfGeneralCategory($0) != .nonspacingMark }
  }

  /// Per-scalar full lower-case mapping (Rust's `char::to_lowercase`): no context, so a final capital
  /// sigma becomes σ, not ς, as HuggingFace does.
  private func lowercased(_ scalars: [Unicode.Scalar], allASCII: Bool) -> [Unicode.Scalar] {
    if allASCII {
      return scalars.map { s in
        (0x41...0x5A).contains(s.value) ? Unicode.Scalar(UInt8(s.value) + 0x20) : s
      }
    }
    var out: [Unicode.Scalar] = []
    out.reserveCapacity(scalars.count)
    for s in scalars {
      if s.isASCII || !s.properties.changesWhenLowercased {
        out.append((0x41...0x5A).contains(s.value) ? Unicode.Scalar(UInt8(s.value) + 0x20) : s)
      } else {
        out.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
      }
    }
    return out
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


/// The Unicode general category as HuggingFace's Rust tokenizer sees it.
///
/// `tokenizers` classifies characters with the `unicode_categories` crate, whose tables are Unicode 8.0:
/// a character assigned later is unassigned (Cn) to it, so it is neither control, nor mark, nor
/// punctuation, and survives as an ordinary character. Swift's tables are newer, so we pin the version
/// by each scalar's Unicode age, and restore the Unicode 8.0 category of the few characters that Unicode
/// has re-categorised since in a way that changes BERT's treatment. The sweep over every code point in
/// `TokenizerTests` checks all of this against HuggingFace.
func hfGeneralCategory(_ s: Unicode.Scalar) -> Unicode.GeneralCategory {
  switch s.value {
  case 0x166D, 0x111C9: return .otherPunctuation  // Po in 8.0, re-categorised since
  case 0x1734, 0x1171E: return .nonspacingMark  // Mn in 8.0, re-categorised since
  case 0x1885, 0x1886: return .otherLetter  // Lo in 8.0, re-categorised since
  case 0xA9BD: return .spacingMark  // Mc in 8.0, re-categorised since
  default: break
  }
  let p = s.properties
  guard let age = p.age, age.major < 8 || (age.major == 8 && age.minor == 0) else { return .unassigned }
  return p.generalCategory
}

/// A value read from a file (a tensor name, a key, a token, a label), as an error message shows it:
/// control characters escaped so the message stays one line, and at most `limit` Unicode scalars
/// (the start and the end kept), so a hostile 10 MB key, or a run of combining marks that is one
/// character to Swift, cannot make a 10 MB message.
public func shown<S: StringProtocol>(_ value: S, limit: Int = 60) -> String {
  var scalars: [Unicode.Scalar] = []
  for s in value.unicodeScalars {
    if s.value < 0x20 || s.value == 0x7F || (0x80..<0xA0).contains(s.value) || s == "\u{2028}" || s == "\u{2029}" {
      scalars.append(contentsOf: s.escaped(asASCII: true).unicodeScalars)
    } else {
      scalars.append(s)
    }
  }
  var out = String.UnicodeScalarView()
  guard scalars.count > limit, limit >= 8 else {
    out.append(contentsOf: scalars)
    return String(out)
  }
  let head = (limit - 3) * 2 / 3
  out.append(contentsOf: scalars.prefix(head))
  out.append(contentsOf: "...".unicodeScalars)
  out.append(contentsOf: scalars.suffix(limit - 3 - head))
  return String(out)
}

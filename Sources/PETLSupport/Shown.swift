/// A value read from a file (a tensor name, a key, a token, a label), as an error message shows it:
/// control characters escaped so the message stays one line, and at most `limit` characters (the
/// start and the end kept), so a hostile 10 MB key cannot make a 10 MB message.
public func shown<S: StringProtocol>(_ value: S, limit: Int = 60) -> String {
  var out = ""
  for s in value.unicodeScalars {
    if s.value < 0x20 || s.value == 0x7F || (0x80..<0xA0).contains(s.value) || s == "\u{2028}" || s == "\u{2029}" {
      out += s.escaped(asASCII: true)
    } else {
      out.unicodeScalars.append(s)
    }
  }
  guard out.count > limit, limit >= 8 else { return out }
  let head = (limit - 3) * 2 / 3
  return String(out.prefix(head)) + "..." + String(out.suffix(limit - 3 - head))
}

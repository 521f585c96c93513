/// FNV-1a 64-bit hash of a string's UTF-8 bytes. Identity, not security.
public func fnv1a64(_ s: String) -> UInt64 {
  var h: UInt64 = 0xcbf2_9ce4_8422_2325
  for b in s.utf8 { h ^= UInt64(b); h = h &* 0x0000_0100_0000_01b3 }
  return h
}

/// `fnv1a64` as 16 lowercase hex digits.
public func fnv1a64Hex(_ s: String) -> String {
  let hex = String(fnv1a64(s), radix: 16)
  return String(repeating: "0", count: 16 - hex.count) + hex
}

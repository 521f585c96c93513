/// The scalar starting at byte `i` of valid UTF-8 (a Swift string's storage) and the byte after it.
/// The tokenizers walk a text's bytes with it: no array of scalars the size of the text is made.
@inline(__always)
func scalar(in bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (Unicode.Scalar, Int) {
  let b0 = UInt32(bytes[i])
  if b0 < 0x80 { return (Unicode.Scalar(UInt8(b0)), i + 1) }
  let v: UInt32, n: Int
  if b0 < 0xE0 {
    v = (b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F); n = 2
  } else if b0 < 0xF0 {
    v = (b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F); n = 3
  } else {
    v = (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F); n = 4
  }
  return (Unicode.Scalar(v) ?? "\u{FFFD}", i + n)
}

/// The start of the scalar that ends just before byte `i` (> 0) of valid UTF-8.
@inline(__always)
func scalarStart(in bytes: UnsafeBufferPointer<UInt8>, before i: Int) -> Int {
  var j = i - 1
  while j > 0 && bytes[j] & 0xC0 == 0x80 { j -= 1 }
  return j
}

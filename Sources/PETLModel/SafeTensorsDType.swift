
/// Element types of the safetensors format, spelled as in the header (`"F32"`, `"BF16"`, ...).
/// All of the format's types are known so that any valid file opens and its sizes can be checked; only
/// the float and integer families below can be read as values.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
  case bool = "BOOL"
  case u8 = "U8", i8 = "I8"
  case f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
  case u16 = "U16", i16 = "I16", f16 = "F16", bf16 = "BF16"
  case u32 = "U32", i32 = "I32", f32 = "F32"
  case u64 = "U64", i64 = "I64", f64 = "F64"

  /// Bytes per element.
  public var size: Int {
    switch self {
    case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
    case .u16, .i16, .f16, .bf16: return 2
    case .u32, .i32, .f32: return 4
    case .u64, .i64, .f64: return 8
    }
  }

  /// Readable with `floats`/`copyFloats`: converted exactly to Float (F64 is rounded).
  public var isFloat: Bool { [.f16, .bf16, .f32, .f64].contains(self) }

  /// Readable with `integers`: every value fits Int64 exactly.
  public var isInteger: Bool { [.u8, .i8, .i16, .i32, .i64].contains(self) }
}

/// Exact IEEE binary16 -> binary32 widening, done on bits so it is the same on every platform
/// (Swift's `Float16` is unavailable on macOS x86_64). Handles zeros, subnormals, infinities and NaN.
@inline(__always)
func floatFromHalfBits(_ h: UInt16) -> Float {
  let sign = UInt32(h & 0x8000) << 16
  let exponent = UInt32(h >> 10) & 0x1f
  var mantissa = UInt32(h & 0x3ff)
  if exponent == 0x1f {  // inf or NaN: keep the payload
    return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13))
  }
  if exponent == 0 {
    if mantissa == 0 { return Float(bitPattern: sign) }
    // Subnormal half: normalise; every half subnormal is a normal float.
    var e: UInt32 = 127 - 15 + 1
    while mantissa & 0x400 == 0 { mantissa <<= 1; e -= 1 }
    return Float(bitPattern: sign | (e << 23) | ((mantissa & 0x3ff) << 13))
  }
  return Float(bitPattern: sign | ((exponent + 127 - 15) << 23) | (mantissa << 13))
}

/// bfloat16 is the top half of a binary32, so widening is a shift.
@inline(__always)
func floatFromBFloat16Bits(_ b: UInt16) -> Float {
  Float(bitPattern: UInt32(b) << 16)
}

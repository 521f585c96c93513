/// bfloat16 as the engine stores it: the upper 16 bits of a Float (sign, 8-bit exponent, 7 stored
/// mantissa bits), in `UInt16`. Conversion from Float rounds to nearest, ties to even, and turns every
/// NaN into 0x7FC0: exactly c10::BFloat16's `round_to_nearest_even`, so a tensor rounded here and one
/// rounded by PyTorch's autocast hold the same bits. Widening back is exact.
public typealias BF16 = UInt16

public enum BFloat16 {
  @inline(__always)
  public static func round(_ x: Float) -> BF16 {
    guard !x.isNaN else { return 0x7FC0 }
    let u = x.bitPattern
    return BF16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
  }

  @inline(__always)
  public static func float(_ b: BF16) -> Float { Float(bitPattern: UInt32(b) << 16) }

  /// Sixteen lanes rounded as `round`, still 32 bits wide (the bf16 value in the upper half).
  @_transparent @usableFromInline
  static func roundedBits16(_ v: F16x) -> SIMD16<UInt32> {
    let u = unsafeBitCast(v, to: SIMD16<UInt32>.self)
    let r = (u &+ 0x7FFF &+ ((u &>> 16) & 1)) & 0xFFFF_0000
    return r.replacing(with: 0x7FC0_0000, where: v .!= v)
  }

  /// The bf16 value nearest each lane, as a Float: what a bf16 GEMM input holds. The engine's own
  /// small products (the [CLS]-only attention) round their operands with it.
  @_transparent
  public static func rounded(_ v: F16x) -> F16x { unsafeBitCast(roundedBits16(v), to: F16x.self) }

  @_transparent @usableFromInline
  static func narrow16(_ v: F16x) -> SIMD16<UInt16> { SIMD16<UInt16>(truncatingIfNeeded: roundedBits16(v) &>> 16) }

  @inline(__always)
  static func load16(_ p: UnsafePointer<BF16>, _ i: Int, _ lanes: Int) -> F16x {
    var h = SIMD16<UInt16>()
    if lanes == 16 { h = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<UInt16>.self) } else { for j in 0..<lanes { h[j] = p[i + j] } }
    return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16, to: F16x.self)
  }

  @inline(__always)
  static func store16(_ v: F16x, _ p: UnsafeMutablePointer<BF16>, _ i: Int, _ lanes: Int) {
    let h = narrow16(v)
    if lanes == 16 { UnsafeMutableRawPointer(p + i).storeBytes(of: h, as: SIMD16<UInt16>.self); return }
    for j in 0..<lanes { p[i + j] = h[j] }
  }

  /// dst[i] = round(src[i]) for i < count, on the calling thread.
  public static func convert(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<BF16>, count: Int) {
    forEachBlock(count) { i, l in store16(PETLKernels.load16(src, i, l), dst, i, l) }
  }

  /// `convert` split across the workers (each element is rounded alone, so the split changes nothing).
  public static func convertParallel(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<BF16>, count: Int) {
    Parallel.forFloats(count, minChunk: 1 << 15) { lo, hi in convert(src + lo, dst + lo, count: hi - lo) }
  }

  /// dst[i] = src[i] widened to Float (exact), split across the workers.
  public static func widenParallel(_ src: UnsafePointer<BF16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forFloats(count, minChunk: 1 << 15) { lo, hi in
      forEachBlock(hi - lo) { i, l in PETLKernels.store16(load16(src + lo, i, l), dst + lo, i, l) }
    }
  }
}

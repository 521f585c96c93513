/// Vectorisable transcendental functions. glibc's `expf`/`erff`/`tanhf` are scalar calls the
/// compiler cannot vectorise; these are written so it emits AVX2/AVX-512 for them: no trapping
/// Float->Int conversions, no `clamped`.
public typealias F16x = SIMD16<Float>

public enum FastMath {
  /// e^x to about 2 ulp on [-87, 88] (Cephes-style polynomial, round-to-nearest by a magic number).
  @_transparent  // mandatory inlining: plain @inline(__always) left calls in GELU/softmax (perf)
  public static func exp(_ x0: F16x) -> F16x {
    let x = vmin(vmax(x0, F16x(repeating: -87)), F16x(repeating: 88))
    let magic = F16x(repeating: 12_582_912)  // 1.5 * 2^23
    let kk = x * 1.442_695_040_888_963_4 + magic
    let k = kk - magic
    let r1 = x - k * 0.693_359_375
    let r = r1 - k * -2.121_944_40e-4
    var p = F16x(repeating: 1.987_569_150_0e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let e = (p * (r * r) + r) + 1
    let bits = (unsafeBitCast(kk, to: SIMD16<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return e * unsafeBitCast(bits, to: F16x.self)
  }

  @inline(__always)
  public static func exp(_ x: Float) -> Float { exp(F16x(repeating: x))[0] }

  /// erf(x) by Abramowitz & Stegun 7.1.26 (max abs error 1.5e-7 in exact arithmetic, a few 1e-7 in
  /// Float; checked against double-precision erf in tests).
  @_transparent  // mandatory inlining: plain @inline(__always) left calls in GELU/softmax (perf)
  public static func erf(_ x: F16x) -> F16x { erfAndGaussian(x).erf }

  /// erf(x) and the exp(-x²) it computes on the way (|x| clamped at 9), which GELU's slope reuses.
  @_transparent
  public static func erfAndGaussian(_ x: F16x) -> (erf: F16x, gaussian: F16x) {
    let ax = vmin(vabs(x), F16x(repeating: 9))
    let t = 1 / (1 + 0.327_591_1 * ax)
    var y = F16x(repeating: 1.061_405_429)
    y = y * t - 1.453_152_027
    y = y * t + 1.421_413_741
    y = y * t - 0.284_496_736
    y = y * t + 0.254_829_592
    y = y * t
    let e = exp(F16x() - ax * ax)
    let r = 1 - y * e
    return (r.replacing(with: -r, where: x .< 0), e)
  }

  @_transparent  // mandatory inlining: plain @inline(__always) left calls in GELU/softmax (perf)
  public static func tanh(_ x: F16x) -> F16x {
    // tanh(x) = 1 - 2 / (e^{2x} + 1), symmetric form to keep precision near 0.
    let ax = vmin(vabs(x), F16x(repeating: 15))
    let e = exp(ax * -2)
    let t = (1 - e) / (1 + e)
    return t.replacing(with: -t, where: x .< 0)
  }
}

/// Lane-wise min/max. The stdlib's generic `pointwiseMin`/`pointwiseMax` are not inlined (seen in
/// `perf`: a scalar lane loop behind a call); a compare-and-select compiles to vminps/vmaxps.
@_transparent @usableFromInline
func vmin(_ a: F16x, _ b: F16x) -> F16x { a.replacing(with: b, where: b .< a) }

@_transparent @usableFromInline
func vmax(_ a: F16x, _ b: F16x) -> F16x { a.replacing(with: b, where: b .> a) }

@_transparent @usableFromInline
func vabs(_ x: F16x) -> F16x {
  unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: F16x.self)
}

/// Loops of `count` Floats in SIMD16 blocks plus a scalar tail handled by padding a vector.
@inline(__always)
func forEachBlock(_ count: Int, _ body: (_ i: Int, _ lanes: Int) -> Void) {
  var i = 0
  while i + 16 <= count { body(i, 16); i += 16 }
  if i < count { body(i, count - i) }
}

@inline(__always)
func load16(_ p: UnsafePointer<Float>, _ i: Int, _ lanes: Int, pad: Float = 0) -> F16x {
  if lanes == 16 { return UnsafeRawPointer(p + i).loadUnaligned(as: F16x.self) }
  var v = F16x(repeating: pad)
  for j in 0..<lanes { v[j] = p[i + j] }
  return v
}

@inline(__always)
func store16(_ v: F16x, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ lanes: Int) {
  if lanes == 16 { UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: F16x.self); return }
  for j in 0..<lanes { p[i + j] = v[j] }
}

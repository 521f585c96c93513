import Foundation

/// Counter-based randomness: every random number is a pure function of (seed, stream, index), so
/// dropout masks can be regenerated in the backward pass instead of stored, and a data-parallel rank
/// draws exactly the numbers a single rank would draw for the same global example.
public enum CounterRNG {
  /// SplitMix64 finaliser: a strong 64-bit mix of the input.
  @inline(__always)
  public static func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A stream key from several parts (seed, step, site, layer, example...).
  @inline(__always)
  public static func key(_ parts: UInt64...) -> UInt64 {
    var h: UInt64 = 0x243F_6A88_85A3_08D3
    for p in parts { h = mix(h ^ p) }
    return h
  }

  /// Uniform in [0, 1) with 24 bits, for element `index` (below 2^32) of stream `key`.
  @inline(__always)
  public static func uniform(_ key: UInt64, _ index: UInt64) -> Float {
    Float(hash32(key, UInt32(truncatingIfNeeded: index)) >> 8) * (1.0 / 16_777_216.0)
  }

  /// Two rounds of murmur3's 32-bit finaliser, keyed by the low and then the high half of `key`: a
  /// permutation of the 32-bit indices per key. 32-bit multiplies vectorise 16 lanes wide (64-bit
  /// ones do not, and SplitMix64 per element made dropout a visible share of a step).
  @inline(__always)
  static func hash32(_ key: UInt64, _ index: UInt32) -> UInt32 {
    var x = fmix32(index ^ UInt32(truncatingIfNeeded: key))
    x ^= UInt32(truncatingIfNeeded: key >> 32)
    return fmix32(x)
  }

  @inline(__always)
  static func fmix32(_ h0: UInt32) -> UInt32 {
    var h = h0
    h ^= h >> 16; h = h &* 0x85EB_CA6B
    h ^= h >> 13; h = h &* 0xC2B2_AE35
    return h ^ (h >> 16)
  }
}

/// A sequential seeded generator for shuffling and initialisation (SplitMix64).
public struct SeededGenerator: RandomNumberGenerator {
  private var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    return CounterRNG.mix(state &- 0x9E37_79B9_7F4A_7C15)
  }
  /// Standard normal by Box-Muller.
  public mutating func normal() -> Float {
    let u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    let r = (-2.0 * log(max(u1, 1e-300))).squareRoot()
    return Float(r * cos(2.0 * Double.pi * u2))
  }
}

extension CounterRNG {
  /// The integer form of `uniform(k, i) < p`: uniform is (24-bit h) / 2^24, so it is below p exactly
  /// when h < ceil(p * 2^24) (p * 2^24 is exact in Float).
  @inline(__always)
  static func threshold24(_ p: Float) -> UInt32 {
    let t = (p * 16_777_216).rounded(.up)
    return t <= 0 ? 0 : (t >= 16_777_216 ? 16_777_216 : UInt32(t))
  }

  /// Lanes j = 0..<16: `uniform(key, index0 + j) < p`, with `threshold` = threshold24(p); the same
  /// hash as the scalar `hash32`, 16 lanes at a time.
  @inline(__always)
  static func dropMask16(_ key: UInt64, _ index0: UInt32, threshold: UInt32) -> SIMDMask<SIMD16<Int32>> {
    let idx = SIMD16<UInt32>(repeating: index0) &+ SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    var x = fmix32(idx ^ SIMD16<UInt32>(repeating: UInt32(truncatingIfNeeded: key)))
    x ^= SIMD16<UInt32>(repeating: UInt32(truncatingIfNeeded: key >> 32))
    x = fmix32(x)
    return (x &>> 8) .< SIMD16<UInt32>(repeating: threshold)
  }

  @inline(__always)
  static func fmix32(_ h0: SIMD16<UInt32>) -> SIMD16<UInt32> {
    var h = h0
    h ^= h &>> 16; h = h &* 0x85EB_CA6B
    h ^= h &>> 13; h = h &* 0xC2B2_AE35
    return h ^ (h &>> 16)
  }
}

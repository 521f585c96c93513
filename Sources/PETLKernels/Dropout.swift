/// Inverted dropout over packed [N, C] activations, keyed per example so the mask of a token does not
/// depend on which rank holds it or how its batch was packed: element (t, c) of example e uses
/// counter index t<<16|c in stream key(base, e). The backward pass regenerates the same mask.
public enum Dropout {
  public static func apply(
    _ x: UnsafeMutablePointer<Float>, offsets: [Int], exampleIds: [UInt64], cols C: Int, p: Float, base: UInt64
  ) {
    guard p > 0 else { return }
    RowDropout(offsets: offsets, exampleIds: exampleIds, p: p, base: base).forEachRow(cols: C) { r, key, index0 in
      applyRow(x + r * C, count: C, key: key, index0: index0, p: p)
    }
  }

  /// Row of `count` floats, element j uses counter index0 | j:  x = u < p ? 0 : x / (1 - p).
  @inline(__always)
  static func applyRow(_ row: UnsafeMutablePointer<Float>, count: Int, key: UInt64, index0: UInt64, p: Float) {
    apply(dst: row, src: row, count: count, key: key, index0: index0, p: p)
  }

  /// dst[j] = u(key, index0|j) < p ? 0 : src[j] * (1/(1-p)), bit-identical to the scalar definition
  /// (`CounterRNG.uniform`), sixteen hashes at a time.
  @inline(__always)
  static func apply(dst: UnsafeMutablePointer<Float>, src: UnsafePointer<Float>, count: Int, key: UInt64, index0: UInt64, p: Float) {
    let scale = 1 / (1 - p)
    let thr = CounterRNG.threshold24(p)
    var j = 0
    while j + 16 <= count {
      let v = UnsafeRawPointer(src + j).loadUnaligned(as: F16x.self)
      UnsafeMutableRawPointer(dst + j).storeBytes(of: apply16(v, key: key, index0: index0, j: j, threshold: thr, scale: scale),
                                                 as: F16x.self)
      j += 16
    }
    while j < count {
      dst[j] = CounterRNG.uniform(key, index0 | UInt64(j)) < p ? 0 : src[j] * scale
      j += 1
    }
  }

  /// Lanes j..<j+16 of a row with counter base `index0` (threshold = threshold24(p), scale =
  /// 1/(1-p)): v with dropped lanes 0 and kept ones scaled. The fused kernels call it too.
  @inline(__always)
  static func apply16(_ v: F16x, key: UInt64, index0: UInt64, j: Int, threshold: UInt32, scale: Float) -> F16x {
    let drop = CounterRNG.dropMask16(key, UInt32(truncatingIfNeeded: index0) | UInt32(j), threshold: threshold)
    return (v * scale).replacing(with: 0, where: drop)
  }
}

/// The dropout of one site over packed rows: row t of example b draws from stream key(base, ids[b])
/// at counters t<<16 | c. Fused kernels (residual + LayerNorm, LayerNorm backward) take one so the
/// mask is applied in the same pass over a row as their own work.
public struct RowDropout {
  public let offsets: [Int]
  public let exampleIds: [UInt64]
  public let p: Float
  public let base: UInt64

  public init(offsets: [Int], exampleIds: [UInt64], p: Float, base: UInt64) {
    self.offsets = offsets; self.exampleIds = exampleIds; self.p = p; self.base = base
  }

  /// Calls body(row, key, index0) for every packed row, split by sequences (balanced by length)
  /// across the workers when the rows are many (serial for the head's few [CLS] rows).
  @inline(__always)
  func forEachRow(cols: Int, _ body: (_ row: Int, _ key: UInt64, _ index0: UInt64) -> Void) {
    let B = offsets.count - 1
    offsets.withUnsafeBufferPointer { offs in
      exampleIds.withUnsafeBufferPointer { ids in
        Parallel.forBalanced(B, minCost: (1 << 15) / max(cols, 1), cost: { offs[$0 + 1] - offs[$0] }) { _, range in
          for b in range {
            let key = CounterRNG.key(base, ids[b])
            for t in 0..<(offs[b + 1] - offs[b]) { body(offs[b] + t, key, UInt64(t << 16)) }
          }
        }
      }
    }
  }

}

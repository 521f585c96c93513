/// The optimizers' element-wise passes over the gradient slab and the trainable parameters; every
/// one splits into float ranges, so results do not depend on the worker count.
extension Ops {
  /// L2 norm of g [count]: partial sums over fixed 64K-float chunks (split across the workers),
  /// added in chunk order, so the norm does not depend on the worker count.
  public static func norm(_ g: UnsafePointer<Float>, count: Int) -> Double {
    let chunk = 1 << 16
    let chunks = (count + chunk - 1) / chunk
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: max(chunks, 1)) { partial in
      let part = partial.baseAddress!
      Parallel.forRanges(chunks, minChunk: 4) { _, range in
        for c in range {
          let lo = c * chunk, n = min(chunk, count - lo)
          var acc = F16x()
          forEachBlock(n) { i, l in let x = load16(g + lo, i, l); acc += x * x }
          part[c] = Double(acc.sum())
        }
      }
      var total = 0.0
      for c in 0..<chunks { total += part[c] }
      return total.squareRoot()
    }
  }

  /// g [count] *= s.
  public static func scale(_ g: UnsafeMutablePointer<Float>, count: Int, by s: Float) {
    Parallel.forFloats(count) { lo, hi in
      forEachBlock(hi - lo) { i, l in store16(load16(g + lo, i, l) * s, g + lo, i, l) }
    }
  }

  /// SGD on one segment: p -= lr · g, and g = 0 for the next step's accumulation (same pass).
  public static func sgdStep(_ params: UnsafeMutablePointer<Float>, _ grads: UnsafeMutablePointer<Float>, count: Int, lr: Float) {
    Parallel.forFloats(count) { lo, hi in
      let p = params + lo, g = grads + lo
      forEachBlock(hi - lo) { i, l in
        store16(load16(p, i, l) - lr * load16(g, i, l), p, i, l)
        store16(F16x(), g, i, l)
      }
    }
  }

  /// AdamW on one segment (torch's AdamW): m, v the moments; `decay` = 1 - lr · weight decay (1:
  /// none); `stepSize` = lr / (1 - β1ᵗ); `invSqrtBc2` = 1 / √(1 - β2ᵗ). g = 0 afterwards, in the same
  /// pass: with full fine-tuning the update is bound by memory traffic over p, g, m and v.
  public static func adamwStep(_ params: UnsafeMutablePointer<Float>, _ grads: UnsafeMutablePointer<Float>,
                               m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
                               decay: Float, stepSize: Float, invSqrtBc2: Float, beta1 b1: Float, beta2 b2: Float, eps e: Float) {
    Parallel.forFloats(count) { lo, hi in
      let p = params + lo, g = grads + lo, mm = m + lo, vv = v + lo
      forEachBlock(hi - lo) { i, l in
        let gi = load16(g, i, l)
        store16(F16x(), g, i, l)
        let mi = b1 * load16(mm, i, l) + (1 - b1) * gi
        let vi = b2 * load16(vv, i, l) + (1 - b2) * gi * gi
        store16(mi, mm, i, l); store16(vi, vv, i, l)
        let denom = vi.squareRoot() * invSqrtBc2 + e
        store16(load16(p, i, l) * decay - stepSize * mi / denom, p, i, l)
      }
    }
  }
}

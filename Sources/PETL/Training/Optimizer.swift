import Foundation

/// Linear warmup then linear decay to zero, as HF's `get_linear_schedule_with_warmup`.
public struct LinearSchedule: Sendable {
  public let base: Double
  public let warmupSteps: Int
  public let totalSteps: Int

  public init(base: Double, warmupSteps: Int, totalSteps: Int) {
    self.base = base; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
  }

  /// Learning rate of 0-based step `s`.
  public func rate(at s: Int) -> Double {
    if s < warmupSteps { return base * Double(s) / Double(max(1, warmupSteps)) }
    return base * max(0, Double(totalSteps - s) / Double(max(1, totalSteps - warmupSteps)))
  }
}

/// The optimizers of the study. They walk the trainable set's segments, so frozen parameters are
/// never read or written, and the state (AdamW moments) is the size of the gradient slab.
public final class Optimizer {
  public let kind: TrainOptions.Optimizer
  public let weightDecay: Float
  public let beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
  private let segments: [TrainableSet.Segment]
  private let m: UnsafeMutablePointer<Float>
  private let v: UnsafeMutablePointer<Float>
  private let count: Int
  public private(set) var step = 0

  public init(kind: TrainOptions.Optimizer, trainable: TrainableSet, weightDecay: Double) {
    self.kind = kind
    self.weightDecay = Float(weightDecay)
    self.segments = trainable.segments
    self.count = trainable.count
    let n = kind == .adamw ? count : 0
    m = .allocate(capacity: max(n, 1)); m.initialize(repeating: 0, count: max(n, 1))
    v = .allocate(capacity: max(n, 1)); v.initialize(repeating: 0, count: max(n, 1))
  }

  deinit { m.deallocate(); v.deallocate() }

  /// L2 norm of the gradient slab: partial sums over fixed 64K-float chunks (split across the
  /// workers), added in chunk order, so the norm does not depend on the worker count.
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

  /// Scales the gradients so their norm is at most `maxNorm` (torch's clip_grad_norm_:
  /// coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the pre-clip norm.
  @discardableResult
  public static func clip(_ g: UnsafeMutablePointer<Float>, count: Int, maxNorm: Double) -> Double {
    let n = norm(g, count: count)
    let c = maxNorm / (n + 1e-6)
    if maxNorm > 0 && c < 1 {
      let s = Float(c)
      Parallel.forFloats(count) { lo, hi in
        forEachBlock(hi - lo) { i, l in store16(load16(g + lo, i, l) * s, g + lo, i, l) }
      }
    }
    return n
  }

  /// One update of `params` from `grads` at learning rate `lr`, which also zeroes `grads` for the
  /// next step's accumulation in the same pass: with small batches and full fine-tuning the step is
  /// bound by memory traffic over the slabs (p, g, m, v), so a separate zeroing pass costs ~1/8.
  public func update(params: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, lr: Double) {
    step += 1
    let lr = Float(lr)
    switch kind {
    case .sgd:
      for s in segments {
        Parallel.forFloats(s.count) { lo, hi in
          let p = params + s.paramOffset + lo, g = grads + s.gradOffset + lo
          forEachBlock(hi - lo) { i, l in
            store16(load16(p, i, l) - lr * load16(g, i, l), p, i, l)
            store16(F16x(), g, i, l)
          }
        }
      }
    case .adamw:
      let t = Float(step)
      let bc1 = 1 - Float(pow(Double(beta1), Double(t)))
      let bc2 = 1 - Float(pow(Double(beta2), Double(t)))
      let stepSize = lr / bc1, invSqrtBc2 = 1 / bc2.squareRoot()
      let b1 = beta1, b2 = beta2, e = eps
      for s in segments {
        let decay: Float = s.decays ? 1 - lr * weightDecay : 1
        Parallel.forFloats(s.count) { lo, hi in
          let p = params + s.paramOffset + lo, g = grads + s.gradOffset + lo
          let mm = m + s.gradOffset + lo, vv = v + s.gradOffset + lo
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
  }
}

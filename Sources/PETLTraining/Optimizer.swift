import Foundation
import PETLKernels
import PETLModel

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
  private let segments: [GradientPlan.Segment]
  private let m: UnsafeMutablePointer<Float>
  private let v: UnsafeMutablePointer<Float>
  private let count: Int
  public private(set) var step = 0

  public init(kind: TrainOptions.Optimizer, trainable: TrainableSet, weightDecay: Double) {
    self.kind = kind
    self.weightDecay = Float(weightDecay)
    self.segments = trainable.plan.segments
    self.count = trainable.count
    let n = kind == .adamw ? count : 0
    m = .allocate(capacity: max(n, 1)); m.initialize(repeating: 0, count: max(n, 1))
    v = .allocate(capacity: max(n, 1)); v.initialize(repeating: 0, count: max(n, 1))
  }

  deinit { m.deallocate(); v.deallocate() }

  /// L2 norm of the gradient slab, independent of the worker count (`Ops.norm`).
  public static func norm(_ g: UnsafePointer<Float>, count: Int) -> Double { Ops.norm(g, count: count) }

  /// Scales the gradients so their norm is at most `maxNorm` (torch's clip_grad_norm_:
  /// coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the pre-clip norm.
  @discardableResult
  public static func clip(_ g: UnsafeMutablePointer<Float>, count: Int, maxNorm: Double) -> Double {
    let n = norm(g, count: count)
    let c = maxNorm / (n + 1e-6)
    if maxNorm > 0 && c < 1 { Ops.scale(g, count: count, by: Float(c)) }
    return n
  }

  /// One update of `params` from `grads` at learning rate `lr`, which also zeroes `grads` for the
  /// next step's accumulation in the same pass (`Ops.adamwStep`, `Ops.sgdStep`).
  public func update(params: UnsafeMutablePointer<Float>, grads: UnsafeMutablePointer<Float>, lr: Double) {
    step += 1
    let lr = Float(lr)
    switch kind {
    case .sgd:
      for s in segments { Ops.sgdStep(params + s.paramOffset, grads + s.gradOffset, count: s.count, lr: lr) }
    case .adamw:
      let t = Float(step)
      let bc1 = 1 - Float(pow(Double(beta1), Double(t)))
      let bc2 = 1 - Float(pow(Double(beta2), Double(t)))
      let stepSize = lr / bc1, invSqrtBc2 = 1 / bc2.squareRoot()
      for s in segments {
        Ops.adamwStep(params + s.paramOffset, grads + s.gradOffset, m: m + s.gradOffset, v: v + s.gradOffset,
                      count: s.count, decay: s.decays ? 1 - lr * weightDecay : 1, stepSize: stepSize,
                      invSqrtBc2: invSqrtBc2, beta1: beta1, beta2: beta2, eps: eps)
      }
    }
  }
}

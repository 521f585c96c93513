import Foundation

/// The element-wise activations (GELU, ReLU, tanh) forward beside backward, and the attention's
/// row softmax.
extension Ops {
  // MARK: GELU (erf)  g = u * Φ(u) = 0.5 u (1 + erf(u / √2))

  /// g = gelu(u); with `slope` (which may be u itself), also slope = Φ(u) + u φ(u), all the backward
  /// needs: a training forward stores it in place of u, and the backward is one multiply.
  public static func geluForward(_ g: UnsafeMutablePointer<Float>, _ u: UnsafeMutablePointer<Float>, count: Int,
                                 slope: UnsafeMutablePointer<Float>? = nil) {
    Parallel.forFloats(count) { lo, hi in
      let g = g + lo, u = u + lo
      if let slope {
        let sl = slope + lo
        forEachBlock(hi - lo) { i, l in
          let x = load16(u, i, l)
          // erf(x/√2) = 1 - poly·e with e = exp(-x²/2), and φ(x) = e/√(2π): one exp for both
          let (erf, e) = FastMath.erfAndGaussian(x * 0.707_106_781_186_547_5)
          let cdf = 0.5 * (1 + erf)
          store16(x * cdf, g, i, l)
          store16(cdf + x * (e * 0.398_942_280_401_432_7), sl, i, l)
        }
      } else {
        forEachBlock(hi - lo) { i, l in
          let x = load16(u, i, l)
          store16(0.5 * x * (1 + FastMath.erfAndGaussian(x * 0.707_106_781_186_547_5).erf), g, i, l)
        }
      }
    }
  }

  /// du = dg * slope (the slope from a training `geluForward`)
  public static func geluBackward(_ du: UnsafeMutablePointer<Float>, dg: UnsafePointer<Float>, slope: UnsafePointer<Float>, count: Int) {
    Parallel.forFloats(count) { lo, hi in
      let du = du + lo, dg = dg + lo, sl = slope + lo
      forEachBlock(hi - lo) { i, l in store16(load16(dg, i, l) * load16(sl, i, l), du, i, l) }
    }
  }

  // MARK: ReLU (DistilBERT's head)

  public static func reluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    forEachBlock(count) { i, l in store16(vmax(load16(x, i, l), F16x(repeating: 0)), y, i, l) }
  }

  /// dx = dy where y > 0, else 0 (y = relu(x), so y > 0 exactly where x > 0)
  public static func reluBackward(_ dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, y: UnsafePointer<Float>, count: Int) {
    forEachBlock(count) { i, l in
      store16(load16(dy, i, l).replacing(with: 0, where: load16(y, i, l) .<= 0), dx, i, l)
    }
  }

  // MARK: tanh (BERT's pooler, RoBERTa's head)

  public static func tanhForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    forEachBlock(count) { i, l in store16(FastMath.tanh(load16(x, i, l)), y, i, l) }
  }

  /// dx = dy * (1 - y²)
  public static func tanhBackward(_ dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, y: UnsafePointer<Float>, count: Int) {
    forEachBlock(count) { i, l in
      let t = load16(y, i, l)
      store16(load16(dy, i, l) * (1 - t * t), dx, i, l)
    }
  }

  // MARK: softmax over the first `len` entries of a row (keys past `len` are padding: probability 0)

  public static func softmaxRow(_ row: UnsafeMutablePointer<Float>, len: Int) {
    var mx = F16x(repeating: -.greatestFiniteMagnitude)
    forEachBlock(len) { i, l in mx = vmax(mx, load16(row, i, l, pad: -.greatestFiniteMagnitude)) }
    let m = mx.max()
    var acc = F16x()
    forEachBlock(len) { i, l in
      var e = FastMath.exp(load16(row, i, l) - m)
      if l < 16 { for j in l..<16 { e[j] = 0 } }
      acc += e
      store16(e, row, i, l)
    }
    let inv = 1 / acc.sum()
    forEachBlock(len) { i, l in store16(load16(row, i, l) * inv, row, i, l) }
  }
}

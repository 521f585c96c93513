import Foundation

/// The engine's operations, each forward beside its backward (llm.c style). Shapes are in the
/// comments; every matrix is row-major. Backward functions ACCUMULATE into weight gradients (the
/// trainer zeroes the gradient slab once per step) and take nil for a gradient nobody needs, which is
/// how frozen parameters cost nothing.
public enum Ops {
  // MARK: linear  out[N,O] = inp[N,I] · W[O,I]ᵀ + b[O]

  public static func linearForward(
    _ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>,
    _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, n: Int, i: Int, o: Int
  ) {
    if let b {
      Parallel.forRanges(n, minChunk: 64) { _, rows in for r in rows { (out + r * o).update(from: b, count: o) } }
      BLAS.gemm(transA: false, transB: true, m: n, n: o, k: i, a: inp, b: w, beta: 1, c: out)
    } else {
      BLAS.gemm(transA: false, transB: true, m: n, n: o, k: i, a: inp, b: w, beta: 0, c: out)
    }
  }

  /// dinp[N,I] (+)= dout[N,O] · W[O,I]   dW[O,I] += doutᵀ · inp   db[O] += Σ_rows dout
  public static func linearBackward(
    dinp: UnsafeMutablePointer<Float>?, accumulateInput: Bool = false,
    dw: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, w: UnsafePointer<Float>,
    n: Int, i: Int, o: Int
  ) {
    if let dinp {
      BLAS.gemm(transA: false, transB: false, m: n, n: i, k: o, a: dout, b: w,
                beta: accumulateInput ? 1 : 0, c: dinp)
    }
    if let dw {
      BLAS.gemm(transA: true, transB: false, m: o, n: i, k: n, a: dout, b: inp, beta: 1, c: dw)
    }
    if let db { columnSums(dout, rows: n, cols: o, into: db) }
  }

  /// db[C] += Σ_r x[r, C]
  public static func columnSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into db: UnsafeMutablePointer<Float>) {
    // Column chunks: every column is summed over the rows in order, whatever the worker count.
    Parallel.forColumns(cols, rows: rows) { lo, hi in
      for r in 0..<rows {
        let row = x + r * cols
        forEachBlock(hi - lo) { c, lanes in
          store16(load16(db, lo + c, lanes) + load16(row, lo + c, lanes), db, lo + c, lanes)
        }
      }
    }
  }

  // MARK: layer norm  out[N,C] = (x - mean) * rstd * gamma + beta; keeps xhat[N,C], rstd[N]

  public static func layerNormForward(
    _ out: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    _ inp: UnsafePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
    n: Int, c: Int, eps: Float
  ) {
    let invC = 1 / Float(c)
    Parallel.forRanges(n, minChunk: 32) { _, rows in for r in rows {
      let x = inp + r * c, y = out + r * c, h = xhat + r * c
      var acc = F16x()
      forEachBlock(c) { i, l in acc += load16(x, i, l) }
      let mean = acc.sum() * invC
      var vacc = F16x()
      forEachBlock(c) { i, l in
        var d = load16(x, i, l) - mean
        if l < 16 { for j in l..<16 { d[j] = 0 } }
        vacc += d * d
      }
      let rs = 1 / (vacc.sum() * invC + eps).squareRoot()
      rstd[r] = rs
      forEachBlock(c) { i, l in
        let hv = (load16(x, i, l) - mean) * rs
        store16(hv, h, i, l)
        store16(hv * load16(gamma, i, l) + load16(beta, i, l), y, i, l)
      }
    } }
  }

  /// dinp[N,C] = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * gamma;
  /// dgamma += Σ dout * xhat; dbeta += Σ dout.
  public static func layerNormBackward(
    dinp: UnsafeMutablePointer<Float>?, dgamma: UnsafeMutablePointer<Float>?, dbeta: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>, n: Int, c: Int
  ) {
    let invC = 1 / Float(c)
    if dgamma != nil || dbeta != nil {
      Parallel.forColumns(c, rows: n) { lo, hi in
        for r in 0..<n {
          let dy = dout + r * c + lo, h = xhat + r * c + lo
          if let dgamma {
            let dg = dgamma + lo
            forEachBlock(hi - lo) { i, l in store16(load16(dg, i, l) + load16(dy, i, l) * load16(h, i, l), dg, i, l) }
          }
          if let dbeta {
            let db = dbeta + lo
            forEachBlock(hi - lo) { i, l in store16(load16(db, i, l) + load16(dy, i, l), db, i, l) }
          }
        }
      }
    }
    guard let dinp else { return }
    Parallel.forRanges(n, minChunk: 32) { _, rows in for r in rows {
      let dy = dout + r * c, h = xhat + r * c
      var s1 = F16x(), s2 = F16x()
      forEachBlock(c) { i, l in
        let g = load16(dy, i, l) * load16(gamma, i, l)
        s1 += g
        s2 += g * load16(h, i, l)
      }
      let m1 = s1.sum() * invC, m2 = s2.sum() * invC, rs = rstd[r]
      let dx = dinp + r * c
      forEachBlock(c) { i, l in
        let g = load16(dy, i, l) * load16(gamma, i, l)
        store16((g - m1 - load16(h, i, l) * m2) * rs, dx, i, l)
      }
    } }
  }

  // MARK: GELU (erf)  g = u * Φ(u) = 0.5 u (1 + erf(u / √2))

  public static func geluForward(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, count: Int) {
    Parallel.forFloats(count) { lo, hi in
      let g = g + lo, u = u + lo
      forEachBlock(hi - lo) { i, l in
        let x = load16(u, i, l)
        store16(0.5 * x * (1 + FastMath.erf(x * 0.707_106_781_186_547_5)), g, i, l)
      }
    }
  }

  /// du = dg * (Φ(u) + u φ(u))
  public static func geluBackward(_ du: UnsafeMutablePointer<Float>, dg: UnsafePointer<Float>, u: UnsafePointer<Float>, count: Int) {
    Parallel.forFloats(count) { lo, hi in
      let du = du + lo, dg = dg + lo, u = u + lo
      forEachBlock(hi - lo) { i, l in
        let x = load16(u, i, l)
        let cdf = 0.5 * (1 + FastMath.erf(x * 0.707_106_781_186_547_5))
        let pdf = FastMath.exp(x * x * -0.5) * 0.398_942_280_401_432_7
        store16(load16(dg, i, l) * (cdf + x * pdf), du, i, l)
      }
    }
  }

  // MARK: tanh (pooler)

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

  // MARK: residual  y[n] += x[n]

  public static func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    Parallel.forFloats(count, minChunk: 1 << 16) { lo, hi in
      let y = y + lo, x = x + lo
      forEachBlock(hi - lo) { i, l in store16(load16(y, i, l) + load16(x, i, l), y, i, l) }
    }
  }

  /// y[n] = x[n] (parallel copy for large buffers)
  public static func copy(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    Parallel.forFloats(count, minChunk: 1 << 16) { lo, hi in (y + lo).update(from: x + lo, count: hi - lo) }
  }

  /// y[n] = 0 (parallel for large buffers)
  public static func zero(_ y: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forFloats(count, minChunk: 1 << 16) { lo, hi in (y + lo).update(repeating: 0, count: hi - lo) }
  }
}

import Foundation

/// Where `linearBackward` adds a weight's gradient: the whole [o, i] matrix, or only some of its
/// entries (row-major indices), the k-th into `dw[k]`.
public enum WeightGradient {
  case dense(UnsafeMutablePointer<Float>)
  case entries(UnsafeMutablePointer<Float>, [Int])
}

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
    dw: WeightGradient?, db: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, w: UnsafePointer<Float>,
    n: Int, i: Int, o: Int
  ) {
    if let dinp {
      BLAS.gemm(transA: false, transB: false, m: n, n: i, k: o, a: dout, b: w,
                beta: accumulateInput ? 1 : 0, c: dinp)
    }
    switch dw {
    case .dense(let dw)?:
      BLAS.gemm(transA: true, transB: false, m: o, n: i, k: n, a: dout, b: inp, beta: 1, c: dw)
    case .entries(let dw, let indices)?:
      weightGradientEntries(dw, indices: indices, dout: dout, inp: inp, n: n, i: i, o: o)
    case nil: break
    }
    if let db { columnSums(dout, rows: n, cols: o, into: db) }
  }

  /// dw[k] += Σ_t dout[t, e / i] · inp[t, e % i] with e = indices[k]: the entries of doutᵀ · inp that
  /// train, each a dot product over the rows, so a few scattered scalars (the `random` control) cost
  /// O(k · n) instead of the whole O(o · i · n) product.
  public static func weightGradientEntries(_ dw: UnsafeMutablePointer<Float>, indices: [Int],
                                           dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                           n: Int, i: Int, o: Int) {
    indices.withUnsafeBufferPointer { idx in
      Parallel.forRanges(idx.count, minChunk: 64) { _, ks in
        for k in ks {
          let r = idx[k] / i, c = idx[k] % i
          var s: Float = 0
          for t in 0..<n { s += dout[t * o + r] * inp[t * i + c] }
          dw[k] += s
        }
      }
    }
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
    Parallel.forRanges(n, minChunk: 32) { _, rows in
      for r in rows { layerNormRow(out + r * c, xhat + r * c, rstd + r, inp + r * c, gamma, beta, c: c, eps: eps) }
    }
  }

  /// out[N,C] = LN(dropout(r) + residual): the end of each BERT sublayer in one pass per row, the
  /// dropout at `dropout`'s site. `r` (the dense output) is overwritten with the LN input. `rounded`:
  /// also out rounded to bf16 there, in the same pass (the next layer's bf16 GEMM operand).
  public static func residualLayerNormForward(
    _ out: UnsafeMutablePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    _ r: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, c: Int, eps: Float, dropout: RowDropout,
    rounded: UnsafeMutablePointer<BF16>? = nil
  ) {
    let p = dropout.p, thr = CounterRNG.threshold24(p), scale = 1 / (1 - p)
    dropout.forEachRow(cols: c) { row, key, index0 in
      let x = r + row * c, res = residual + row * c
      forEachBlock(c) { i, l in
        var v = load16(x, i, l)
        if p > 0 { v = Dropout.apply16(v, key: key, index0: index0, j: i, threshold: thr, scale: scale) }
        store16(v + load16(res, i, l), x, i, l)
      }
      layerNormRow(out + row * c, xhat + row * c, rstd + row, x, gamma, beta, c: c, eps: eps)
      if let rounded { BFloat16.convert(out + row * c, rounded + row * c, count: c) }
    }
  }

  /// One row of LayerNorm (the row is in L1 for its three sweeps).
  @inline(__always)
  static func layerNormRow(_ y: UnsafeMutablePointer<Float>, _ h: UnsafeMutablePointer<Float>, _ rstd: UnsafeMutablePointer<Float>,
                           _ x: UnsafePointer<Float>, _ gamma: UnsafePointer<Float>, _ beta: UnsafePointer<Float>,
                           c: Int, eps: Float) {
    let invC = 1 / Float(c)
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
    rstd.pointee = rs
    forEachBlock(c) { i, l in
      let hv = (load16(x, i, l) - mean) * rs
      store16(hv, h, i, l)
      store16(hv * load16(gamma, i, l) + load16(beta, i, l), y, i, l)
    }
  }

  /// dinp[N,C] = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * gamma;
  /// dgamma += Σ dout * xhat; dbeta += Σ dout.
  public static func layerNormBackward(
    dinp: UnsafeMutablePointer<Float>?, dgamma: UnsafeMutablePointer<Float>?, dbeta: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>, n: Int, c: Int
  ) {
    layerNormParameterGradients(dgamma: dgamma, dbeta: dbeta, dout: dout, xhat: xhat, n: n, c: c)
    guard let dinp else { return }
    Parallel.forRanges(n, minChunk: 32) { _, rows in
      for r in rows { layerNormBackwardRow(dinp + r * c, dout + r * c, xhat + r * c, rstd[r], gamma, c: c) }
    }
  }

  /// `layerNormBackward` over packed rows that also writes, in the same pass, dropped =
  /// dropout(dinp): the gradient entering the dense layer whose output went through `dropout` into
  /// this LayerNorm's residual sum. `dinp` (the residual branch's gradient) and `dropped` may each be
  /// nil when nothing below needs it (both nil: only dgamma, dbeta).
  public static func layerNormBackward(
    dinp: UnsafeMutablePointer<Float>?, dropped: UnsafeMutablePointer<Float>?, dropout: RowDropout,
    dgamma: UnsafeMutablePointer<Float>?, dbeta: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    gamma: UnsafePointer<Float>, c: Int
  ) {
    let n = dropout.offsets.last ?? 0
    layerNormParameterGradients(dgamma: dgamma, dbeta: dbeta, dout: dout, xhat: xhat, n: n, c: c)
    guard let d0 = dropped ?? dinp else { return }
    let p = dropout.p, thr = CounterRNG.threshold24(p), scale = 1 / (1 - p)
    dropout.forEachRow(cols: c) { r, key, index0 in
      let d = d0 + r * c
      layerNormBackwardRow(d, dout + r * c, xhat + r * c, rstd[r], gamma, c: c)
      guard dropped != nil else { return }
      forEachBlock(c) { i, l in
        let v = load16(d, i, l)
        if let dinp { store16(v, dinp + r * c, i, l) }
        if p > 0 { store16(Dropout.apply16(v, key: key, index0: index0, j: i, threshold: thr, scale: scale), d, i, l) }
      }
    }
  }

  /// dgamma[C] += Σ_rows dout * xhat; dbeta[C] += Σ_rows dout (column chunks, rows in order).
  static func layerNormParameterGradients(dgamma: UnsafeMutablePointer<Float>?, dbeta: UnsafeMutablePointer<Float>?,
                                          dout: UnsafePointer<Float>, xhat: UnsafePointer<Float>, n: Int, c: Int) {
    guard dgamma != nil || dbeta != nil else { return }
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

  @inline(__always)
  static func layerNormBackwardRow(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ h: UnsafePointer<Float>,
                                   _ rs: Float, _ gamma: UnsafePointer<Float>, c: Int) {
    let invC = 1 / Float(c)
    var s1 = F16x(), s2 = F16x()
    forEachBlock(c) { i, l in
      let g = load16(dy, i, l) * load16(gamma, i, l)
      s1 += g
      s2 += g * load16(h, i, l)
    }
    let m1 = s1.sum() * invC, m2 = s2.sum() * invC
    forEachBlock(c) { i, l in
      let g = load16(dy, i, l) * load16(gamma, i, l)
      store16((g - m1 - load16(h, i, l) * m2) * rs, dx, i, l)
    }
  }

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

  // MARK: residual  y[n] += x[n]

  public static func addInPlace(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    Parallel.forFloats(count, minChunk: 1 << 16) { lo, hi in
      let y = y + lo, x = x + lo
      forEachBlock(hi - lo) { i, l in store16(load16(y, i, l) + load16(x, i, l), y, i, l) }
    }
  }

  /// y[n] = 0 (parallel for large buffers)
  public static func zero(_ y: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.forFloats(count, minChunk: 1 << 16) { lo, hi in (y + lo).update(repeating: 0, count: hi - lo) }
  }
}

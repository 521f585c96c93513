import Foundation

/// LayerNorm over rows, forward beside backward, with the dropout and residual sum of each BERT
/// sublayer fused into the same pass per row.
extension Ops {
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
  /// also out rounded to bf16 there, in the same pass (the next bf16 product's operand).
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
}

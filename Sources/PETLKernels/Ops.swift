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
/// how frozen parameters cost nothing. This file holds the linear layer and the residual sum; the
/// other families are extensions beside it (LayerNormOps, ActivationOps, EmbeddingOps, OptimizerOps).
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

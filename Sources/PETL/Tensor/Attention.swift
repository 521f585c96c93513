/// Multi-head self-attention over PACKED sequences: the batch's tokens are concatenated (no padding
/// rows), sequence b occupies rows offsets[b]..<offsets[b+1] of q, k, v [N, H], and each head h reads
/// the column block h*d..<(h+1)*d. Padding never enters the arithmetic, so a padded reference (HF with
/// an attention mask) gives the same numbers at every real position.
public enum Attention {
  /// Floats of the probability buffer for a batch: heads * Σ len².
  public static func probsCount(offsets: [Int], heads: Int) -> Int {
    var s = 0
    for b in 0..<(offsets.count - 1) { let l = offsets[b + 1] - offsets[b]; s += l * l }
    return s * heads
  }

  /// Dropout key of the attention probabilities of (example, head) in a given layer/step.
  @inline(__always)
  static func dropoutKey(_ base: UInt64, example: UInt64, head: Int) -> UInt64 {
    CounterRNG.key(base, example, UInt64(head))
  }

  /// Applies dropout (keep with prob 1-p, scale 1/(1-p)) to a [len, len] block: element (i, j) uses
  /// counter index i<<16|j, independent of how the batch was packed.
  @inline(__always)
  static func dropoutBlock(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, len: Int, p: Float, key: UInt64) {
    let scale = 1 / (1 - p)
    for i in 0..<len {
      for j in 0..<len {
        let u = CounterRNG.uniform(key, UInt64(i << 16 | j))
        dst[i * len + j] = u < p ? 0 : src[i * len + j] * scale
      }
    }
  }

  /// probs[h][b] = softmax(q_b,h · k_b,hᵀ / √d);  ctx[N,H] = dropout(probs) · v
  /// `scratch` holds max len² floats (the dropped-out block when p > 0).
  public static func forward(
    ctx: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
    offsets: [Int], exampleIds: [UInt64], hidden H: Int, heads: Int,
    dropout p: Float, dropoutBase: UInt64, scratch: UnsafeMutablePointer<Float>
  ) {
    let d = H / heads
    let scale = 1 / Float(d).squareRoot()
    var po = 0
    for b in 0..<(offsets.count - 1) {
      let o = offsets[b], len = offsets[b + 1] - o
      for h in 0..<heads {
        let P = probs + po
        let qb = q + o * H + h * d, kb = k + o * H + h * d, vb = v + o * H + h * d
        // S[len,len] = q_b [len,d] · k_bᵀ, scaled
        BLAS.gemm(transA: false, transB: true, m: len, n: len, k: d, alpha: scale,
                  a: qb, lda: H, b: kb, ldb: H, c: P)
        for i in 0..<len { Ops.softmaxRow(P + i * len, len: len) }
        var used = UnsafePointer(P)
        if p > 0 {
          dropoutBlock(scratch, P, len: len, p: p, key: dropoutKey(dropoutBase, example: exampleIds[b], head: h))
          used = UnsafePointer(scratch)
        }
        // ctx_b [len,d] = P [len,len] · v_b [len,d]
        BLAS.gemm(transA: false, transB: false, m: len, n: d, k: len, a: used, b: vb, ldb: H,
                  c: ctx + o * H + h * d, ldc: H)
        po += len * len
      }
    }
  }

  /// From dctx [N,H]: dv = Pdᵀ · dctx;  dPd = dctx · vᵀ;  dP = dropout'(dPd);
  /// dS = P ∘ (dP - rowsum(dP ∘ P)) / √d;  dq = dS · k;  dk = dSᵀ · q  (all written, not accumulated).
  /// `scratch` holds 2 * max len² floats.
  public static func backward(
    dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
    dctx: UnsafePointer<Float>, probs: UnsafePointer<Float>,
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
    offsets: [Int], exampleIds: [UInt64], hidden H: Int, heads: Int,
    dropout p: Float, dropoutBase: UInt64, scratch: UnsafeMutablePointer<Float>, maxLen: Int
  ) {
    let d = H / heads
    let scale = 1 / Float(d).squareRoot()
    let pd = scratch, dP = scratch + maxLen * maxLen
    var po = 0
    for b in 0..<(offsets.count - 1) {
      let o = offsets[b], len = offsets[b + 1] - o
      for h in 0..<heads {
        let P = probs + po
        let col = o * H + h * d
        let key = dropoutKey(dropoutBase, example: exampleIds[b], head: h)
        var used = P
        if p > 0 { dropoutBlock(pd, P, len: len, p: p, key: key); used = UnsafePointer(pd) }
        // dv_b [len,d] = Pdᵀ · dctx_b
        BLAS.gemm(transA: true, transB: false, m: len, n: d, k: len, a: used, b: dctx + col, ldb: H,
                  c: dv + col, ldc: H)
        // dPd [len,len] = dctx_b · v_bᵀ
        BLAS.gemm(transA: false, transB: true, m: len, n: len, k: d, a: dctx + col, lda: H, b: v + col, ldb: H, c: dP)
        if p > 0 {
          let s = 1 / (1 - p)
          for i in 0..<len {
            for j in 0..<len where CounterRNG.uniform(key, UInt64(i << 16 | j)) < p { dP[i * len + j] = 0 }
          }
          for i in 0..<(len * len) { dP[i] *= s }
        }
        // softmax backward, row by row, folded with the 1/√d of the scores
        for i in 0..<len {
          let pr = P + i * len, dr = dP + i * len
          var dot: Float = 0
          for j in 0..<len { dot += pr[j] * dr[j] }
          for j in 0..<len { dr[j] = pr[j] * (dr[j] - dot) * scale }
        }
        // dq_b [len,d] = dS · k_b ;  dk_b [len,d] = dSᵀ · q_b
        BLAS.gemm(transA: false, transB: false, m: len, n: d, k: len, a: dP, b: k + col, ldb: H, c: dq + col, ldc: H)
        BLAS.gemm(transA: true, transB: false, m: len, n: d, k: len, a: dP, b: q + col, ldb: H, c: dk + col, ldc: H)
        po += len * len
      }
    }
  }
}

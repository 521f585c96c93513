/// Multi-head self-attention over PACKED sequences: the batch's tokens are concatenated (no padding
/// rows), sequence b occupies rows offsets[b]..<offsets[b+1] of q, k, v [N, H], and each head h reads
/// the column block h*d..<(h+1)*d. Padding never enters the arithmetic, so a padded reference (HF with
/// an attention mask) gives the same numbers at every real position.
///
/// The (sequence, head) pairs are independent: they run across `Parallel.workers` threads, each with
/// its own scratch; their small GEMMs run single-threaded inside each worker.
public enum Attention {
  /// Scratch floats per worker for forward and backward.
  public static func scratchPerWorker(maxLen: Int) -> Int { 2 * maxLen * maxLen }

  /// What every attention call takes besides its tensors: the packed sequences (rows
  /// offsets[b]..<offsets[b+1], their example ids for the dropout streams), the heads, dropout, and
  /// scratch of `scratchPerWorker(maxLen)` floats per worker.
  public struct Packing {
    public let offsets: [Int]
    public let exampleIds: [UInt64]
    public let hidden: Int
    public let heads: Int
    public let dropout: Float
    public let dropoutBase: UInt64
    let scratchBase: UnsafeMutablePointer<Float>
    public let maxLen: Int
    /// bf16 scratch (`scratchPerWorkerBF16(...).halves` per worker) for the bf16 products; the fp32
    /// scratch is then `scratchPerWorkerBF16(...).floats` per worker.
    let scratchBF16: UnsafeMutablePointer<BF16>?

    public init(offsets: [Int], exampleIds: [UInt64], hidden: Int, heads: Int, dropout: Float, dropoutBase: UInt64,
                scratch: UnsafeMutablePointer<Float>, maxLen: Int, scratchBF16: UnsafeMutablePointer<BF16>? = nil) {
      self.offsets = offsets; self.exampleIds = exampleIds; self.hidden = hidden; self.heads = heads
      self.dropout = dropout; self.dropoutBase = dropoutBase; self.scratchBase = scratch; self.maxLen = maxLen
      self.scratchBF16 = scratchBF16
    }

    var headDim: Int { hidden / heads }
    var scale: Float { 1 / Float(headDim).squareRoot() }
    /// A worker's own scratch.
    func scratch(_ worker: Int) -> UnsafeMutablePointer<Float> {
      scratchBase + worker * (scratchBF16 == nil ? scratchPerWorker(maxLen: maxLen) : scratchPerWorkerBF16(maxLen: maxLen, heads: heads).floats)
    }
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
    for i in 0..<len {
      Dropout.apply(dst: dst + i * len, src: src + i * len, count: len, key: key, index0: UInt64(i << 16), p: p)
    }
  }

  /// Runs body(worker, h, probs offset, first row, len, example id) over every (sequence, head) pair,
  /// split across the workers by cost (len²).
  @inline(__always)
  static func forPairs(_ a: Packing, _ body: (_ worker: Int, _ h: Int, _ po: Int, _ o: Int, _ len: Int, _ id: UInt64) -> Void) {
    let B = a.offsets.count - 1, heads = a.heads
    a.offsets.withUnsafeBufferPointer { offsets in
      a.exampleIds.withUnsafeBufferPointer { ids in
        Parallel.forBalanced(B * heads, minCost: 1 << 12, cost: { pair in
          let b = pair / heads, l = offsets[b + 1] - offsets[b]
          return l * l
        }) { worker, range in
          // probs offset of (b, h): heads * Σ_{b'<b} len_b'² + h * len_b²
          var b = range.lowerBound / heads, base = 0
          for bb in 0..<b { let l = offsets[bb + 1] - offsets[bb]; base += heads * l * l }
          var pair = range.lowerBound
          while pair < range.upperBound {
            let l = offsets[b + 1] - offsets[b]
            let h = pair - b * heads
            body(worker, h, base + h * l * l, offsets[b], l, ids[b])
            pair += 1
            if pair - b * heads == heads { base += heads * l * l; b += 1 }
          }
        }
      }
    }
  }

  /// probs[h][b] = softmax(q_b,h · k_b,hᵀ / √d);  ctx[N,H] = dropout(probs) · v
  /// `scratch` holds `scratchPerWorker(maxLen)` floats per worker (`Parallel.workers`).
  public static func forward(ctx: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, _ a: Packing) {
    let H = a.hidden, d = a.headDim, scale = a.scale, p = a.dropout
    forPairs(a) { worker, h, po, o, len, id in
      let P = probs + po
      let qb = q + o * H + h * d, kb = k + o * H + h * d, vb = v + o * H + h * d
      // S[len,len] = q_b [len,d] · k_bᵀ, scaled
      BLAS.gemm(transA: false, transB: true, m: len, n: len, k: d, alpha: scale,
                a: qb, lda: H, b: kb, ldb: H, c: P)
      // softmax rows, each dropped (into scratch) while it is still in L1
      var used = UnsafePointer(P)
      let s = a.scratch(worker)
      let dkey = dropoutKey(a.dropoutBase, example: id, head: h)
      for i in 0..<len {
        Ops.softmaxRow(P + i * len, len: len)
        if p > 0 { Dropout.apply(dst: s + i * len, src: P + i * len, count: len, key: dkey, index0: UInt64(i << 16), p: p) }
      }
      if p > 0 { used = UnsafePointer(s) }
      // ctx_b [len,d] = P [len,len] · v_b [len,d]
      BLAS.gemm(transA: false, transB: false, m: len, n: d, k: len, a: used, b: vb, ldb: H,
                c: ctx + o * H + h * d, ldc: H)
    }
  }

  /// From dctx [N,H]: dv = Pdᵀ · dctx;  dPd = dctx · vᵀ;  with Pd = dropout(P) = P ∘ mask / (1-p):
  /// dS = (Pd ∘ dPd - P · rowsum(Pd ∘ dPd)) / √d  (= P ∘ (dP - rowsum(dP ∘ P)) / √d for
  /// dP = mask ∘ dPd / (1-p), so the mask is drawn once);  dq = dS · k;  dk = dSᵀ · q
  /// (all written, not accumulated). `scratch` holds `scratchPerWorker(maxLen)` floats per worker.
  public static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dctx: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                              q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, _ a: Packing) {
    let H = a.hidden, d = a.headDim, scale = a.scale, p = a.dropout
    forPairs(a) { worker, h, po, o, len, id in
      let pd = a.scratch(worker), dP = pd + a.maxLen * a.maxLen
      let P = probs + po
      let col = o * H + h * d
      var used = P
      if p > 0 {
        dropoutBlock(pd, P, len: len, p: p, key: dropoutKey(a.dropoutBase, example: id, head: h))
        used = UnsafePointer(pd)
      }
      // dv_b [len,d] = Pdᵀ · dctx_b
      BLAS.gemm(transA: true, transB: false, m: len, n: d, k: len, a: used, b: dctx + col, ldb: H,
                c: dv + col, ldc: H)
      // dPd [len,len] = dctx_b · v_bᵀ
      BLAS.gemm(transA: false, transB: true, m: len, n: len, k: d, a: dctx + col, lda: H, b: v + col, ldb: H, c: dP)
      for i in 0..<len { softmaxBackwardRow(dP + i * len, pd: used + i * len, p: P + i * len, len: len, scale: scale) }
      // dq_b [len,d] = dS · k_b ;  dk_b [len,d] = dSᵀ · q_b
      BLAS.gemm(transA: false, transB: false, m: len, n: d, k: len, a: dP, b: k + col, ldb: H, c: dq + col, ldc: H)
      BLAS.gemm(transA: true, transB: false, m: len, n: d, k: len, a: dP, b: q + col, ldb: H, c: dk + col, ldc: H)
    }
  }

  /// dr = (pd ∘ dr - p · Σ pd ∘ dr) * scale, in place over one row.
  @inline(__always)
  static func softmaxBackwardRow(_ dr: UnsafeMutablePointer<Float>, pd: UnsafePointer<Float>, p: UnsafePointer<Float>,
                                 len: Int, scale: Float) {
    var acc = F16x()
    forEachBlock(len) { i, l in acc += load16(pd, i, l) * load16(dr, i, l) }
    let dot = acc.sum()
    forEachBlock(len) { i, l in
      store16((load16(pd, i, l) * load16(dr, i, l) - load16(p, i, l) * dot) * scale, dr, i, l)
    }
  }
}

// MARK: attention of the [CLS] query rows only (the last layer when only the logits are needed)

extension Attention {
  /// Attention for ONE query row per sequence (its first token, [CLS]) against all its keys:
  /// qc [B,H] holds the [CLS] query rows, k, v [N,H] all rows; ctxc [B,H] gets the [CLS] context
  /// rows; probsc holds the probability row of (b, h) at (b*heads + h) * maxLen. Dropout uses the
  /// same stream and counters as row 0 of the full computation, so the numbers match it.
  public static func forwardCLS(ctx ctxc: UnsafeMutablePointer<Float>, probs probsc: UnsafeMutablePointer<Float>,
                                q qc: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, _ a: Packing) {
    let H = a.hidden, d = a.headDim, scale = a.scale, p = a.dropout
    forCLSPairs(a) { worker, pair, b, h, o, len, id in
      let P = probsc + pair * a.maxLen
      let qv = qc + b * H + h * d
      for j in 0..<len {
        let kr = k + (o + j) * H + h * d
        var acc = F16x()
        forEachBlock(d) { i, l in acc += load16(qv, i, l) * load16(kr, i, l) }
        P[j] = acc.sum() * scale
      }
      Ops.softmaxRow(P, len: len)
      var used = UnsafePointer(P)
      if p > 0 {
        let s = a.scratch(worker)
        Dropout.apply(dst: s, src: P, count: len, key: dropoutKey(a.dropoutBase, example: id, head: h), index0: 0, p: p)
        used = UnsafePointer(s)
      }
      let c = ctxc + b * H + h * d
      var i0 = 0
      while i0 < d {
        let lanes = min(16, d - i0)
        var acc = F16x()
        for j in 0..<len { acc += used[j] * load16(v + (o + j) * H + h * d, i0, lanes) }
        store16(acc, c, i0, lanes)
        i0 += 16
      }
      BLAS.countFlops(4 * len * d)
    }
  }

  /// Backward of `forwardCLS`: dqc [B,H] for the [CLS] query rows; dk, dv [N,H] for every row
  /// (written, not accumulated).
  public static func backwardCLS(dq dqc: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                 dv: UnsafeMutablePointer<Float>, dctx dctxc: UnsafePointer<Float>, probs probsc: UnsafePointer<Float>,
                                 q qc: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, _ a: Packing) {
    let H = a.hidden, d = a.headDim, scale = a.scale, p = a.dropout
    forCLSPairs(a) { worker, pair, b, h, o, len, id in
      let P = UnsafePointer(probsc + pair * a.maxLen)
      let pd = a.scratch(worker), dP = pd + a.maxLen
      var used = P
      if p > 0 {
        Dropout.apply(dst: pd, src: P, count: len, key: dropoutKey(a.dropoutBase, example: id, head: h), index0: 0, p: p)
        used = UnsafePointer(pd)
      }
      let dc = dctxc + b * H + h * d, qv = qc + b * H + h * d
      // dv_j = Pd_j · dctx ;  dPd_j = dctx · v_j
      for j in 0..<len {
        let row = (o + j) * H + h * d
        let pj = used[j]
        var acc = F16x()
        forEachBlock(d) { i, l in
          let g = load16(dc, i, l)
          store16(g * pj, dv + row, i, l)
          acc += g * load16(v + row, i, l)
        }
        dP[j] = acc.sum()
      }
      Attention.softmaxBackwardRow(dP, pd: used, p: P, len: len, scale: scale)
      // dq = Σ_j dS_j k_j ;  dk_j = dS_j q
      let dqv = dqc + b * H + h * d
      var i0 = 0
      while i0 < d {
        let lanes = min(16, d - i0)
        let qq = load16(qv, i0, lanes)
        var acc = F16x()
        for j in 0..<len {
          let row = (o + j) * H + h * d
          acc += dP[j] * load16(k + row, i0, lanes)
          store16(qq * dP[j], dk + row, i0, lanes)
        }
        store16(acc, dqv, i0, lanes)
        i0 += 16
      }
      BLAS.countFlops(8 * len * d)
    }
  }

  /// Runs body(worker, pair, b, h, first row, len, example id) over the (sequence, head) pairs of the
  /// [CLS]-only attention, split across the workers by sequence length.
  @inline(__always)
  static func forCLSPairs(_ a: Packing,
                          _ body: (_ worker: Int, _ pair: Int, _ b: Int, _ h: Int, _ o: Int, _ len: Int, _ id: UInt64) -> Void) {
    let B = a.offsets.count - 1, heads = a.heads
    a.offsets.withUnsafeBufferPointer { offs in
      a.exampleIds.withUnsafeBufferPointer { ids in
        Parallel.forBalanced(B * heads, minCost: 1 << 12, cost: { offs[$0 / heads + 1] - offs[$0 / heads] }) { worker, range in
          for pair in range {
            let b = pair / heads
            body(worker, pair, b, pair - b * heads, offs[b], offs[b + 1] - offs[b], ids[b])
          }
        }
      }
    }
  }
}

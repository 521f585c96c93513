/// Attention with bf16 products (`Precision.bf16`), as PyTorch's autocast runs BERT's eager attention:
/// the two forward products (q·kᵀ, P·v) and the four backward ones read bf16 operands and accumulate
/// in fp32; the scores, softmax, dropout and its backward stay fp32. q, k, v and dctx arrive rounded
/// ([N,H] bf16); the probabilities (and their dropped form, then dS) are rounded per sequence here.
///
/// One oneDNN call covers a run of heads of one sequence (the heads are the batch of a 3-d product:
/// head h reads the column block h·d..<(h+1)·d of every row), so a call per (sequence, head) pair's
/// fixed cost is paid once per run. The pairs split across the workers by cost as in `forPairs`.
extension Attention {
  /// Scratch per worker for the bf16 passes: `floats` fp32 (dropped probabilities and dP, a run of
  /// all heads), `halves` bf16 (the rounded probabilities, then dS).
  public static func scratchPerWorkerBF16(maxLen: Int, heads: Int) -> (floats: Int, halves: Int) {
    (2 * heads * maxLen * maxLen, heads * maxLen * maxLen)
  }

  /// Runs body(worker, h0, h1, probs offset of (b, h0), first row, len, example id) over runs of
  /// heads h0..<h1 of one sequence b: each worker's share of the (sequence, head) pairs, cut where
  /// the sequence changes.
  @inline(__always)
  static func forHeadRuns(_ a: Packing, _ body: (_ worker: Int, _ h0: Int, _ h1: Int, _ po: Int, _ o: Int, _ len: Int, _ id: UInt64) -> Void) {
    let B = a.offsets.count - 1, heads = a.heads
    a.offsets.withUnsafeBufferPointer { offsets in
      a.exampleIds.withUnsafeBufferPointer { ids in
        Parallel.forBalanced(B * heads, minCost: 1 << 12, cost: { pair in
          let b = pair / heads, l = offsets[b + 1] - offsets[b]
          return l * l
        }) { worker, range in
          var b = range.lowerBound / heads, base = 0
          for bb in 0..<b { let l = offsets[bb + 1] - offsets[bb]; base += heads * l * l }
          var pair = range.lowerBound
          while pair < range.upperBound {
            let l = offsets[b + 1] - offsets[b]
            let h0 = pair - b * heads, h1 = min(heads, range.upperBound - b * heads)
            body(worker, h0, h1, base + h0 * l * l, offsets[b], l, ids[b])
            pair = b * heads + h1
            base += heads * l * l; b += 1
          }
        }
      }
    }
  }

  /// `forward` with bf16 products: probs[h][b] = softmax(q_b,h · k_b,hᵀ / √d) (fp32), ctx [N,H] =
  /// round(dropout(probs)) · v, summed in fp32 and rounded (its only reader is the attention output's
  /// bf16 product).
  public static func forwardBF16(ctx: UnsafeMutablePointer<BF16>, probs: UnsafeMutablePointer<Float>,
                                 q: UnsafePointer<BF16>, k: UnsafePointer<BF16>, v: UnsafePointer<BF16>, _ a: Packing) {
    let H = a.hidden, d = a.headDim, scale = a.scale, p = a.dropout
    forHeadRuns(a) { worker, h0, h1, po, o, len, id in
      let hc = h1 - h0, n2 = len * len, col = o * H + h0 * d, P = probs + po
      let (row, pb) = (a.scratch(worker), a.bf16Scratch(worker))
      // S_h [len,len] = scale · q_h [len,d] · k_hᵀ
      Matmul.batchedBF16(batch: hc, transA: false, transB: true, m: len, n: len, k: d, alpha: scale,
                         a: q + col, lda: H, strideA: d, b: k + col, ldb: H, strideB: d, c: P, ldc: len, strideC: n2)
      for hh in 0..<hc {
        let key = dropoutKey(a.dropoutBase, example: id, head: h0 + hh)
        for i in 0..<len {
          let r = P + hh * n2 + i * len, rb = pb + hh * n2 + i * len
          Ops.softmaxRow(r, len: len)
          if p > 0 {
            Dropout.apply(dst: row, src: r, count: len, key: key, index0: UInt64(i << 16), p: p)
            BFloat16.convert(row, rb, count: len)
          } else {
            BFloat16.convert(r, rb, count: len)
          }
        }
      }
      // ctx_h [len,d] = Pd_h [len,len] · v_h [len,d]
      Matmul.batchedBF16(batch: hc, transA: false, transB: false, m: len, n: d, k: len, a: pb, lda: len, strideA: n2,
                         b: v + col, ldb: H, strideB: d, rounded: ctx + col, ldc: H, strideC: d)
    }
  }

  /// `backward` with bf16 products, from dctx [N,H] rounded: dv = Pdᵀ · dctx, dPd = dctx · vᵀ,
  /// dS = softmax backward (fp32), dq = dS · k, dk = dSᵀ · q, with Pd and dS rounded before their
  /// products. Written, not accumulated.
  public static func backwardBF16(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                  dctx: UnsafePointer<BF16>, probs: UnsafePointer<Float>,
                                  q: UnsafePointer<BF16>, k: UnsafePointer<BF16>, v: UnsafePointer<BF16>, _ a: Packing) {
    let H = a.hidden, d = a.headDim, scale = a.scale, p = a.dropout
    forHeadRuns(a) { worker, h0, h1, po, o, len, id in
      let hc = h1 - h0, n2 = len * len, col = o * H + h0 * d, P = probs + po
      let pd = a.scratch(worker), dP = pd + a.heads * a.maxLen * a.maxLen, pb = a.bf16Scratch(worker)
      var used = P
      if p > 0 {
        for hh in 0..<hc {
          dropoutBlock(pd + hh * n2, P + hh * n2, len: len, p: p, key: dropoutKey(a.dropoutBase, example: id, head: h0 + hh))
        }
        used = UnsafePointer(pd)
      }
      BFloat16.convert(used, pb, count: hc * n2)
      // dv_h [len,d] = Pd_hᵀ · dctx_h
      Matmul.batchedBF16(batch: hc, transA: true, transB: false, m: len, n: d, k: len, a: pb, lda: len, strideA: n2,
                         b: dctx + col, ldb: H, strideB: d, c: dv + col, ldc: H, strideC: d)
      // dPd_h [len,len] = dctx_h · v_hᵀ
      Matmul.batchedBF16(batch: hc, transA: false, transB: true, m: len, n: len, k: d, a: dctx + col, lda: H, strideA: d,
                         b: v + col, ldb: H, strideB: d, c: dP, ldc: len, strideC: n2)
      for r in 0..<(hc * len) { softmaxBackwardRow(dP + r * len, pd: used + r * len, p: P + r * len, len: len, scale: scale) }
      BFloat16.convert(dP, pb, count: hc * n2)
      // dq_h [len,d] = dS_h · k_h ;  dk_h [len,d] = dS_hᵀ · q_h
      Matmul.batchedBF16(batch: hc, transA: false, transB: false, m: len, n: d, k: len, a: pb, lda: len, strideA: n2,
                         b: k + col, ldb: H, strideB: d, c: dq + col, ldc: H, strideC: d)
      Matmul.batchedBF16(batch: hc, transA: true, transB: false, m: len, n: d, k: len, a: pb, lda: len, strideA: n2,
                         b: q + col, ldb: H, strideB: d, c: dk + col, ldc: H, strideC: d)
    }
  }
}

// MARK: the [CLS] query rows only, bf16 operands (the engine's own dot products, fp32 sums)

extension Attention {
  /// `forwardCLS` on bf16 q [B,H] ([CLS] rows), k, v [N,H]: the probabilities (dropped) are rounded
  /// before they meet v, as the full layer's batched product rounds them; ctx [B,H] is written
  /// rounded. The same numbers as `forwardBF16`'s [CLS] rows, up to fp32 summation order.
  public static func forwardCLSBF16(ctx ctxc: UnsafeMutablePointer<BF16>, probs probsc: UnsafeMutablePointer<Float>,
                                    q qc: UnsafePointer<BF16>, k: UnsafePointer<BF16>, v: UnsafePointer<BF16>, _ a: Packing) {
    let H = a.hidden, d = a.headDim, scale = a.scale, p = a.dropout
    forCLSPairs(a) { worker, pair, b, h, o, len, id in
      let P = probsc + pair * a.maxLen
      let qv = qc + b * H + h * d
      for j in 0..<len {
        let kr = k + (o + j) * H + h * d
        var acc = F16x()
        forEachBlock(d) { i, l in acc += BFloat16.load16(qv, i, l) * BFloat16.load16(kr, i, l) }
        P[j] = acc.sum() * scale
      }
      Ops.softmaxRow(P, len: len)
      let s = a.scratch(worker)
      if p > 0 {
        Dropout.apply(dst: s, src: P, count: len, key: dropoutKey(a.dropoutBase, example: id, head: h), index0: 0, p: p)
      } else {
        s.update(from: P, count: len)
      }
      let c = ctxc + b * H + h * d
      var i0 = 0
      while i0 < d {
        let lanes = min(16, d - i0)
        var acc = F16x()
        for j in 0..<len { acc += BFloat16.float(BFloat16.round(s[j])) * BFloat16.load16(v + (o + j) * H + h * d, i0, lanes) }
        BFloat16.store16(acc, c, i0, lanes)
        i0 += 16
      }
      BLAS.countFlops(4 * len * d)
    }
  }

  /// Backward of `forwardCLSBF16`: every product reads bf16 operands (dctx, the dropped
  /// probabilities and dS rounded here; q, k, v stored rounded), sums in fp32; dqc [B,H], dk, dv
  /// [N,H] written in fp32 (the bias gradients sum them).
  public static func backwardCLSBF16(dq dqc: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                     dv: UnsafeMutablePointer<Float>, dctx dctxc: UnsafePointer<Float>, probs probsc: UnsafePointer<Float>,
                                     q qc: UnsafePointer<BF16>, k: UnsafePointer<BF16>, v: UnsafePointer<BF16>, _ a: Packing) {
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
        let pj = BFloat16.float(BFloat16.round(used[j]))
        var acc = F16x()
        forEachBlock(d) { i, l in
          let g = BFloat16.rounded(load16(dc, i, l))
          store16(g * pj, dv + row, i, l)
          acc += g * BFloat16.load16(v + row, i, l)
        }
        dP[j] = acc.sum()
      }
      Attention.softmaxBackwardRow(dP, pd: used, p: P, len: len, scale: scale)
      // dq = Σ_j dS_j k_j ;  dk_j = dS_j q
      let dqv = dqc + b * H + h * d
      var i0 = 0
      while i0 < d {
        let lanes = min(16, d - i0)
        let qq = BFloat16.load16(qv, i0, lanes)
        var acc = F16x()
        for j in 0..<len {
          let row = (o + j) * H + h * d
          let ds = BFloat16.float(BFloat16.round(dP[j]))
          acc += ds * BFloat16.load16(k + row, i0, lanes)
          store16(qq * ds, dk + row, i0, lanes)
        }
        store16(acc, dqv, i0, lanes)
        i0 += 16
      }
      BLAS.countFlops(8 * len * d)
    }
  }
}

extension Attention.Packing {
  /// A worker's bf16 scratch (bf16 passes only).
  func bf16Scratch(_ worker: Int) -> UnsafeMutablePointer<BF16> {
    guard let base = scratchBF16 else { preconditionFailure("Attention: bf16 pass without bf16 scratch") }
    return base + worker * Attention.scratchPerWorkerBF16(maxLen: maxLen, heads: heads).halves
  }
}

import PETLKernels

extension EncoderModel {
  /// `layerForward` in bf16 (docs/precision.md): the same layer, every product on bf16 operands with
  /// fp32 sums, everything else fp32. What only products read is stored rounded, once, by the op
  /// that makes it (the backward reads the same copies): q, k, v and ctx come rounded out of their
  /// products, y1 out of LN1 (beside its fp32 value, LN2's residual), g out of GELU. Rows as in
  /// `layerForward` (all N, or the B [CLS] rows of the last layer). LoRA adapters (`LoRAPassBF16`)
  /// add their term to their layer's fp32 sum, before q, k or v is rounded.
  func layerForwardBF16(_ l: Int, _ batch: Batch, ws: Workspace, rows: QueryRows, ph: Float, pa: Float, pl: Float,
                        storeSlope: Bool, key: (DropoutSite, Int) -> UInt64) {
    guard let bf16 else { preconditionFailure("layerForwardBF16 without bf16 operands") }
    let H = dims.hidden, I = dims.intermediate, N = batch.tokens, B = batch.count
    let p = layout.layers[l]
    let x = ws.x[l].p
    let (R, xq, out, rowOffsets) = queryRows(l, batch, ws: ws, rows: rows)
    func dropout(_ p: Float, _ site: DropoutSite) -> RowDropout {
      RowDropout(offsets: rowOffsets, exampleIds: batch.exampleIds, p: p, base: key(site, l))
    }
    func product(_ t: TensorPair, _ a: UnsafePointer<BF16>, rows m: Int, in k: Int, out n: Int, into c: UnsafeMutablePointer<Float>) {
      Matmul.bf16(transA: false, transB: true, m: m, n: n, k: k, a: a, b: bf16.weight(t), c: c, bias: bf16.bias(t))
    }
    func product(_ t: TensorPair, _ a: UnsafePointer<BF16>, rows m: Int, into c: UnsafeMutablePointer<BF16>) {
      Matmul.bf16(transA: false, transB: true, m: m, n: H, k: H, a: a, b: bf16.weight(t), rounded: c, bias: bf16.bias(t))
    }
    // LoRA: out [n,o] += (alpha/R) · round(round(dropout(inp)) · Aᵀ) · Bᵀ on the targeted linears
    func lora(_ t: TensorPair, _ inp: UnsafePointer<BF16>, _ out: UnsafeMutablePointer<Float>, rows n: Int, offsets: [Int], i: Int, o: Int) {
      guard let pair = layout.loraPair(t) else { return }
      loraForwardBF16(pair, inp, out, n: n, i: i, o: o, ws: ws,
                      dropout: RowDropout(offsets: offsets, exampleIds: batch.exampleIds, p: pl, base: loraKey(key(.lora, l), pair)))
    }
    // q, k, v rounded out of their product; with an adapter, out of the fp32 sum plus its term (dtmp)
    func projection(_ t: TensorPair, _ a: UnsafePointer<BF16>, rows m: Int, offsets: [Int], into c: UnsafeMutablePointer<BF16>) {
      guard layout.loraPair(t) != nil else { product(t, a, rows: m, into: c); return }
      product(t, a, rows: m, in: H, out: H, into: ws.dtmp.p)
      lora(t, a, ws.dtmp.p, rows: m, offsets: offsets, i: H, o: H)
      BFloat16.convertParallel(ws.dtmp.p, c, count: m * H)
    }
    // k, v [N,H] = round(x · Wᵀ + b (+ LoRA));  q [R,H] = round(xq · Wqᵀ + bq (+ LoRA))
    let xb = roundedInput(x, count: N * H, ws: ws)
    projection(p.key, xb, rows: N, offsets: batch.offsets, into: ws.kb[l].p)
    projection(p.value, xb, rows: N, offsets: batch.offsets, into: ws.vb[l].p)
    projection(p.query, rows == .all ? xb : roundedInput(xq, count: B * H, ws: ws), rows: R, offsets: rowOffsets, into: ws.qb[l].p)
    // ctx [R,H] = round(round(dropout(softmax(q kᵀ/√d))) v), per sequence and head
    let packing = ws.attention(batch, dropout: pa, base: key(.attentionProbs, l))
    switch rows {
    case .all: Attention.forwardBF16(ctx: ws.ctxb[l].p, probs: ws.probs[l].p, q: ws.qb[l].p, k: ws.kb[l].p, v: ws.vb[l].p, packing)
    case .cls: Attention.forwardCLSBF16(ctx: ws.ctxb[l].p, probs: ws.probs[l].p, q: ws.qb[l].p, k: ws.kb[l].p, v: ws.vb[l].p, packing)
    }
    // y1 [R,H] = LN1(dropout(ctx · Waᵀ + ba) + xq), also rounded
    let r1 = ws.dtmp.p
    product(p.attnOut, ws.ctxb[l].p, rows: R, in: H, out: H, into: r1)
    lora(p.attnOut, ws.ctxb[l].p, r1, rows: R, offsets: rowOffsets, i: H, o: H)
    Ops.residualLayerNormForward(ws.y1[l].p, xhat: ws.xhat1[l].p, rstd: ws.rstd1[l].p, r1, residual: xq,
                                 gamma: params + p.lnAttn.weight, beta: params + p.lnAttn.bias, c: H, eps: dims.layerNormEps,
                                 dropout: dropout(dims.family.dropsAttentionOutput ? ph : 0, .attentionOutput),
                                 rounded: ws.y1b[l].p)
    // u [R,I] = y1 · Wiᵀ + bi ;  g = round(gelu(u))  (u becomes GELU's slope when a backward follows)
    product(p.intermediate, ws.y1b[l].p, rows: R, in: H, out: I, into: ws.u[l].p)
    lora(p.intermediate, ws.y1b[l].p, ws.u[l].p, rows: R, offsets: rowOffsets, i: H, o: I)
    Ops.geluForward(rounded: ws.gb[l].p, ws.u[l].p, count: R * I, slope: storeSlope ? ws.u[l].p : nil)
    // out [R,H] = LN2(dropout(g · Woᵀ + bo) + y1)
    let r2 = ws.dtmp.p
    product(p.output, ws.gb[l].p, rows: R, in: I, out: H, into: r2)
    lora(p.output, ws.gb[l].p, r2, rows: R, offsets: rowOffsets, i: I, o: H)
    Ops.residualLayerNormForward(out, xhat: ws.xhat2[l].p, rstd: ws.rstd2[l].p, r2, residual: ws.y1[l].p,
                                 gamma: params + p.lnOut.weight, beta: params + p.lnOut.bias, c: H, eps: dims.layerNormEps,
                                 dropout: dropout(ph, .ffnOutput))
  }
}

import PETLKernels

extension EncoderModel {
  /// Backward pass of the forward `pass` + `loss`, ACCUMULATING into `grads` (the plan's gradient
  /// slab). Weight gradients are computed only for trainable tensors, and each layer's pass stops
  /// where the plan says (`GradientPlan.layerReach`): a cell that trains the top layer's LayerNorms
  /// costs little more than the forward.
  public func backward(_ batch: Batch, ws: Workspace, plan: GradientPlan, grads: UnsafeMutablePointer<Float>,
                       after pass: ForwardPass, dropoutKey: UInt64 = 0, training: Bool = true) {
    let H = dims.hidden, N = batch.tokens, B = batch.count, L = dims.layers
    let C = dims.numLabels
    let ph: Float = training ? hiddenDropout : 0
    let pa: Float = training ? attentionDropout : 0
    let pl: Float = training ? Float(layout.lora?.dropout ?? 0) : 0
    func key(_ site: DropoutSite, _ layer: Int = 0) -> UInt64 { CounterRNG.key(dropoutKey, site.rawValue, UInt64(layer)) }
    let offs = batch.offsets, ids = batch.exampleIds
    let grad = GradientTargets(plan: plan, grads: grads, ws: ws)
    precondition(max(plan.lowestLayer, 0) >= pass.startLayer,
                 "backward: the forward started at layer \(pass.startLayer), the gradient plan reaches layer \(plan.lowestLayer)")
    precondition(plan.lowestLayer >= ws.firstStoredLayer || ws.firstStoredLayer == 0,
                 "backward: the workspace keeps activations from layer \(ws.firstStoredLayer) only, the gradient plan reaches layer \(plan.lowestLayer)")

    // output projection: dWo += dlogitsᵀ · pooledDrop; dpooled = dlogits · Wo
    let head = layout.head
    let denseTrains = plan.trains(head.dense)
    let needPooled = denseTrains || plan.lowestLayer < L
    grad.linear(head.out) { dw, db in
      linearBackward(dinp: needPooled ? ws.dpooled.p : nil, dw: dw, db: db, dout: ws.dlogits.p,
                     inp: ws.pooledDrop.p, head.out, n: B, i: H, o: C, ws: ws)
    }
    guard needPooled else { return }
    let pc: Float = training ? classifierDropout : 0
    Dropout.apply(ws.dpooled.p, offsets: ws.clsOffsets, exampleIds: ids, cols: H, p: pc, base: key(.classifier))
    // head dense: dz = dpooled ∘ act'(z); dWd += dzᵀ · x; dx = dz · Wd (x: [CLS] rows, dropped or not)
    switch dims.family.headActivation {
    case .tanh: Ops.tanhBackward(ws.dpooled.p, dy: ws.dpooled.p, y: ws.pooled.p, count: B * H)
    case .relu: Ops.reluBackward(ws.dpooled.p, dy: ws.dpooled.p, y: ws.pooled.p, count: B * H)
    case .gelu:
      precondition(pass.storedSlope, "backward: the forward ran with forBackward: false")
      Ops.geluBackward(ws.dpooled.p, dg: ws.dpooled.p, slope: ws.headSlope.p, count: B * H)
    }
    let needCls = plan.lowestLayer < L
    grad.linear(head.dense) { dw, db in
      linearBackward(dinp: needCls ? ws.dcls.p : nil, dw: dw, db: db, dout: ws.dpooled.p,
                     inp: headDenseInput(ws), head.dense, n: B, i: H, o: H, ws: ws)
    }
    guard needCls else { return }
    precondition(pass.storedSlope, "backward: the forward ran with forBackward: false")
    if dims.family.dropsHeadInput {
      Dropout.apply(ws.dcls.p, offsets: ws.clsOffsets, exampleIds: ids, cols: H, p: pc, base: key(.headInput))
    }

    if pass.lastLayerRows == .all {
      // dx_L: the [CLS] rows get dcls, every other row 0
      Ops.zero(ws.dx.p, count: N * H)
      for b in 0..<B { (ws.dx.p + offs[b] * H).update(from: ws.dcls.p + b * H, count: H) }
    }
    var l = L - 1
    while l >= max(plan.lowestLayer, 0) {
      guard layerBackward(l, batch, ws: ws, grad: grad, rows: l == L - 1 ? pass.lastLayerRows : .all,
                          reach: plan.layerReach[l], ph: ph, pa: pa, pl: pl, key: { key($0, $1) }) else { return }
      l -= 1
    }
    guard plan.lowestLayer < 0 else { return }

    // embeddings: the projection (ELECTRA), dropout, LN0, then scatter into the tables
    let emb = layout.embeddings, E = dims.embedding
    var dEmbedded = ws.dx.p  // gradient of the dropped LN0 output [N,E]
    if let pr = emb.project {
      // x0 = e · Wpᵀ + bp: dWp += dx0ᵀ · e; de [N,E] = dx0 · Wp
      grad.linear(pr) { dw, db in
        linearBackward(dinp: ws.dtmp.p, dw: dw, db: db, dout: ws.dx.p, inp: ws.embedded.p, pr, n: N, i: E, o: H, ws: ws)
      }
      dEmbedded = ws.dtmp.p
    }
    Dropout.apply(dEmbedded, offsets: offs, exampleIds: ids, cols: E, p: ph, base: key(.embeddings))
    grad.layerNorm(emb.layerNorm) { dg, db in
      Ops.layerNormBackward(dinp: ws.dr.p, dgamma: dg, dbeta: db, dout: dEmbedded, xhat: ws.xhat0.p,
                            rstd: ws.rstd0.p, gamma: params + emb.layerNorm.weight, n: N, c: E)
    }
    // the tables: scatter-adds of dr [N,E]
    grad.single(emb.word.slot) { Ops.scatterAddRows($0, ws.dr.p, index: batch.inputIds, cols: E) }
    if let tt = emb.tokenType {
      grad.single(tt.slot) { Ops.scatterAddRows($0, ws.dr.p, index: batch.tokenTypes, cols: E) }
    }
    if let positions = ws.embeddedPositionIds {
      grad.single(emb.position.slot) { Ops.scatterAddRows($0, ws.dr.p, index: positions, cols: E) }
    } else {
      grad.single(emb.position.slot) { Ops.scatterAddPositions($0, ws.dr.p, offsets: offs, cols: E) }
    }
  }

  /// Backward of `layerForward` for layer `l`, from the gradient of its output: `ws.dx` [N,H] for
  /// all rows, `ws.dcls` [B,H] for the [CLS] rows. Goes as far as `reach`; returns true when it
  /// went down to the layer input (then `ws.dx` holds dx_l [N,H]).
  private func layerBackward(_ l: Int, _ batch: Batch, ws: Workspace, grad: GradientTargets, rows: QueryRows,
                             reach: LayerReach, ph: Float, pa: Float, pl: Float, key: (DropoutSite, Int) -> UInt64) -> Bool {
    let H = dims.hidden, I = dims.intermediate, N = batch.tokens, B = batch.count
    let p = layout.layers[l]
    func w(_ t: TensorPair) -> UnsafeMutablePointer<Float> { params + t.weight }
    // R rows after K and V: the gradient of their output, their inputs xq, their offsets
    let (R, dout, xq, rowOffsets) = switch rows {
    case .all: (N, ws.dx.p, ws.x[l].p, batch.offsets)
    case .cls: (B, ws.dcls.p, ws.clsIn.p, ws.clsOffsets)
    }
    func dropout(_ p: Float, _ site: DropoutSite) -> RowDropout {
      RowDropout(offsets: rowOffsets, exampleIds: batch.exampleIds, p: p, base: key(site, l))
    }
    let pao = dims.family.dropsAttentionOutput ? ph : 0
    let below = reach == .input
    // LayerNorm t from dout [R,H]: dγ, dβ; the residual branch's gradient into `residual` and, through
    // the dropout at `site`, the sublayer output's into `dropped` (nil: not needed).
    func layerNorm(_ t: TensorPair, dout: UnsafeMutablePointer<Float>, xhat: FloatBuffer, rstd: FloatBuffer,
                   residual: UnsafeMutablePointer<Float>?, dropped: UnsafeMutablePointer<Float>?, site: DropoutSite) {
      grad.layerNorm(t) { dg, db in
        Ops.layerNormBackward(dinp: residual, dropped: dropped, dropout: dropout(site == .attentionOutput ? pao : ph, site),
                              dgamma: dg, dbeta: db,
                              dout: dout, xhat: xhat.p, rstd: rstd.p, gamma: w(t), c: H)
      }
    }
    // Linear t from dout [n,o] and its input [n,i]: dW, db; the input's gradient into `dinp` (nil:
    // not needed), added to what is there with `accumulate`. `rounded`: bf16's rounded `inp`. Then
    // its LoRA adapter, if any (dropout rows: `offsets`, the R rows unless given).
    func linear(_ t: TensorPair, dout: UnsafeMutablePointer<Float>, inp: UnsafeMutablePointer<Float>,
                into dinp: UnsafeMutablePointer<Float>?, accumulate: Bool = false, n: Int, i: Int, o: Int,
                rounded: UnsafePointer<BF16>? = nil, offsets: [Int]? = nil) {
      var doutRounded = false  // bf16: the frozen layer's backward left dout rounded in ws.bfOut
      grad.linear(t) { dw, db in
        doutRounded = dinp != nil || dw != nil
        linearBackward(dinp: dinp, accumulateInput: accumulate, dw: dw, db: db, dout: dout, inp: inp, t,
                       n: n, i: i, o: o, ws: ws, rounded: rounded)
      }
      guard let pair = layout.loraPair(t) else { return }
      let drop = RowDropout(offsets: offsets ?? rowOffsets, exampleIds: batch.exampleIds, p: pl,
                            base: loraKey(key(.lora, l), pair))
      let (dA, dB) = (grad.whole(pair.aSlot), grad.whole(pair.bSlot))
      guard precision == .bf16 else {
        return loraBackward(pair, dout: dout, inp: inp, dinp: dinp, dA: dA, dB: dB, n: n, i: i, o: o, ws: ws, dropout: drop)
      }
      loraBackwardBF16(pair, dout: dout, doutRounded: doutRounded, inp: inp, rounded: rounded, dinp: dinp, dA: dA, dB: dB,
                       n: n, i: i, o: o, ws: ws, dropout: drop)
    }
    // LN2: dr2 [R,H] is the residual branch's gradient (straight into dy1) and, through the
    // dropout, the output dense's (dtmp), both from one pass
    layerNorm(p.lnOut, dout: dout, xhat: ws.xhat2[l], rstd: ws.rstd2[l], residual: reach > .intermediate ? ws.dy1.p : nil,
              dropped: reach > .lnOut ? ws.dtmp.p : nil, site: .ffnOutput)
    if reach == .lnOut { return false }
    // output dense: dg [R,I] = do · Wo ; dWo += doᵀ · g
    linear(p.output, dout: ws.dtmp.p, inp: ws.g[l].p, into: reach > .output ? ws.dI.p : nil, n: R, i: I, o: H,
           rounded: stored(ws.gb, l))
    if reach == .output { return false }
    // gelu, then intermediate dense: dy1 [R,H] = dr2 + du · Wi ; dWi += duᵀ · y1
    Ops.geluBackward(ws.dI.p, dg: ws.dI.p, slope: ws.u[l].p, count: R * I)
    linear(p.intermediate, dout: ws.dI.p, inp: ws.y1[l].p, into: reach > .intermediate ? ws.dy1.p : nil, accumulate: true,
           n: R, i: H, o: I, rounded: stored(ws.y1b, l))
    if reach == .intermediate { return false }
    // LN1: dr1 [R,H] is the residual branch's gradient and, through the dropout, the attention
    // output dense's (dtmp). All rows: dr1 goes straight into dxIn; [CLS] rows: into dr, added at
    // the [CLS] rows of dxIn below.
    layerNorm(p.lnAttn, dout: ws.dy1.p, xhat: ws.xhat1[l], rstd: ws.rstd1[l],
              residual: below ? (rows == .all ? ws.dxIn.p : ws.dr.p) : nil, dropped: reach > .lnAttn ? ws.dtmp.p : nil,
              site: .attentionOutput)
    if reach == .lnAttn { return false }
    // attention output dense: dctx [R,H] = da · Wa
    linear(p.attnOut, dout: ws.dtmp.p, inp: ws.ctx[l].p, into: reach > .attnOut ? ws.dctx.p : nil, n: R, i: H, o: H,
           rounded: stored(ws.ctxb, l))
    if reach == .attnOut { return false }
    // attention: dq [R,H], dk, dv [N,H]
    let packing = ws.attention(batch, dropout: pa, base: key(.attentionProbs, l))
    switch (rows, precision) {
    case (.all, .fp32):
      Attention.backward(dq: ws.dq.p, dk: ws.dk.p, dv: ws.dv.p, dctx: ws.dctx.p, probs: ws.probs[l].p,
                         q: ws.q[l].p, k: ws.k[l].p, v: ws.v[l].p, packing)
    case (.all, .bf16):
      BFloat16.convertParallel(ws.dctx.p, ws.dctxb.p, count: N * H)
      Attention.backwardBF16(dq: ws.dq.p, dk: ws.dk.p, dv: ws.dv.p, dctx: ws.dctxb.p, probs: ws.probs[l].p,
                             q: ws.qb[l].p, k: ws.kb[l].p, v: ws.vb[l].p, packing)
    case (.cls, .fp32):
      Attention.backwardCLS(dq: ws.dq.p, dk: ws.dk.p, dv: ws.dv.p, dctx: ws.dctx.p, probs: ws.probs[l].p,
                            q: ws.q[l].p, k: ws.k[l].p, v: ws.v[l].p, packing)
    case (.cls, .bf16):
      Attention.backwardCLSBF16(dq: ws.dq.p, dk: ws.dk.p, dv: ws.dv.p, dctx: ws.dctx.p, probs: ws.probs[l].p,
                                q: ws.qb[l].p, k: ws.kb[l].p, v: ws.vb[l].p, packing)
    }
    // q, k, v dense; dW += dᵀ · input (bf16: the layer input rounded once for the three, and for
    // their LoRA adapters' dA, dB)
    let dxIn = below ? ws.dxIn.p : nil
    let x = ws.x[l].p
    func reads(_ t: TensorPair) -> Bool {
      grad.plan.trains(t.slot) || layout.loraPair(t).map { grad.plan.trains($0.aSlot) || grad.plan.trains($0.bSlot) } ?? false
    }
    let xb = precision == .bf16 && [p.key, p.value, p.query].contains(where: reads) ? roundedInput(x, count: N * H, ws: ws) : nil
    switch rows {
    case .all:
      // dx_in [N,H] = dr1 (residual, already there) + dq·Wq + dk·Wk + dv·Wv
      linear(p.query, dout: ws.dq.p, inp: xq, into: dxIn, accumulate: true, n: N, i: H, o: H, rounded: xb)
      linear(p.key, dout: ws.dk.p, inp: xq, into: dxIn, accumulate: true, n: N, i: H, o: H, rounded: xb, offsets: batch.offsets)
      linear(p.value, dout: ws.dv.p, inp: xq, into: dxIn, accumulate: true, n: N, i: H, o: H, rounded: xb, offsets: batch.offsets)
    case .cls:
      // dx_in [N,H] = dk·Wk + dv·Wv, plus at the [CLS] rows dr1 (residual) + dq·Wq (via dtmp [B,H])
      linear(p.key, dout: ws.dk.p, inp: x, into: dxIn, n: N, i: H, o: H, rounded: xb, offsets: batch.offsets)
      linear(p.value, dout: ws.dv.p, inp: x, into: dxIn, accumulate: true, n: N, i: H, o: H, rounded: xb, offsets: batch.offsets)
      linear(p.query, dout: ws.dq.p, inp: xq, into: below ? ws.dtmp.p : nil, n: B, i: H, o: H)
      if below {
        for b in 0..<B {
          let dst = ws.dxIn.p + batch.offsets[b] * H
          Ops.addInPlace(dst, ws.dtmp.p + b * H, count: H)
          Ops.addInPlace(dst, ws.dr.p + b * H, count: H)
        }
      }
    }
    guard below else { return false }
    swap(&ws.dx, &ws.dxIn)
    return true
  }
}

extension EncoderModel {
  /// Layer l's rounded copy of an activation in bf16 (`Workspace.qb`...), nil in fp32.
  func stored(_ list: [BF16Buffer], _ l: Int) -> UnsafePointer<BF16>? {
    precision == .bf16 ? UnsafePointer(list[l].p) : nil
  }
}

/// Resolves where the backward pass writes each slot's gradient: straight into the gradient slab
/// for a wholly trainable tensor; for a partly trainable one (the `random` control) only its
/// trainable entries of a weight matrix, and zeroed scratch (then gathered) for a vector or a
/// table; nowhere (nil) for a frozen one.
struct GradientTargets {
  let plan: GradientPlan
  let grads: UnsafeMutablePointer<Float>
  let ws: Workspace

  /// A weight and its bias.
  func linear(_ t: TensorPair, _ body: (WeightGradient?, UnsafeMutablePointer<Float>?) -> Void) {
    let wSlot = t.slot, bSlot = t.biasSlot
    let dw: WeightGradient?
    switch plan.targets[wSlot] {
    case nil: dw = nil
    case .full(let g)?: dw = .dense(grads + g)
    case .partial(let g, let indices)?: dw = .entries(grads + g, indices)
    }
    let scrB = needsScratch(bSlot) ? ws.partialScratch(plan.layout.slots[bSlot].count).1 : grads
    body(dw, target(bSlot, scratch: scrB))
    gather(bSlot, from: scrB)
  }

  /// A LayerNorm's gain and bias.
  func layerNorm(_ t: TensorPair, _ body: (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void) {
    let gammaSlot = t.slot, betaSlot = t.biasSlot
    let (scrG, scrB) = needsScratch(gammaSlot) || needsScratch(betaSlot)
      ? ws.partialScratch(plan.layout.slots[gammaSlot].count) : (grads, grads)
    body(target(gammaSlot, scratch: scrG), target(betaSlot, scratch: scrB))
    gather(gammaSlot, from: scrG)
    gather(betaSlot, from: scrB)
  }

  /// A tensor that trains whole (a LoRA adapter's A or B): its gradient, nil when frozen.
  func whole(_ slot: Int) -> UnsafeMutablePointer<Float>? {
    guard case .full(let g)? = plan.targets[slot] else { return nil }
    return grads + g
  }

  func single(_ slot: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
    let s = plan.layout.slots[slot]
    let scr = needsScratch(slot) ? ws.partialScratch(s.count).0 : grads
    guard let t = target(slot, scratch: scr) else { return }
    body(t)
    gather(slot, from: scr)
  }

  private func needsScratch(_ slot: Int) -> Bool {
    if case .partial = plan.targets[slot] { return true }
    return false
  }

  private func target(_ slot: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float>? {
    switch plan.targets[slot] {
    case nil: return nil
    case .full(let g): return grads + g
    case .partial:
      scratch.update(repeating: 0, count: plan.layout.slots[slot].count)
      return scratch
    }
  }

  private func gather(_ slot: Int, from scratch: UnsafeMutablePointer<Float>) {
    guard case .partial(let g, let idx) = plan.targets[slot] else { return }
    for (k, e) in idx.enumerated() { grads[g + k] += scratch[e] }
  }
}

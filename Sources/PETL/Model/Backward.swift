extension BertModel {
  /// Backward pass of the last `forward` + `loss`, ACCUMULATING into `grads` (the trainable set's
  /// gradient slab). Weight gradients are computed only for trainable tensors, and the pass stops at
  /// the lowest stage that holds one: a cell that trains the top layer's LayerNorms costs little
  /// more than the forward.
  public func backward(_ batch: Batch, ws: Workspace, trainable: TrainableSet,
                       grads: UnsafeMutablePointer<Float>, dropoutKey: UInt64 = 0, training: Bool = true) {
    let H = dims.hidden, I = dims.intermediate, N = batch.tokens, B = batch.count, L = dims.layers
    let C = dims.numLabels
    let ph: Float = training ? hiddenDropout : 0
    let pa: Float = training ? attentionDropout : 0
    func key(_ site: DropoutSite, _ layer: Int = 0) -> UInt64 { CounterRNG.key(dropoutKey, site.rawValue, UInt64(layer)) }
    let offs = batch.offsets, ids = batch.exampleIds
    func rows(_ p: Float, _ base: UInt64) -> RowDropout { RowDropout(offsets: offs, exampleIds: ids, p: p, base: base) }
    let grad = GradientTargets(trainable: trainable, grads: grads, ws: ws)
    precondition(max(trainable.lowestLayer, 0) >= ws.startLayer,
                 "backward: the forward started at layer \(ws.startLayer), the trainable set reaches layer \(trainable.lowestLayer)")
    precondition(trainable.lowestLayer >= ws.firstStoredLayer || ws.firstStoredLayer == 0,
                 "backward: the workspace keeps activations from layer \(ws.firstStoredLayer) only, the trainable set reaches layer \(trainable.lowestLayer)")

    // head: dWc += dlogitsᵀ · pooledDrop; dpooled = dlogits · Wc
    let ci = layout.slotIndex(named: "classifier.weight")!
    let needPooled = trainable.lowestLayer < L || trainable.includesPooler
    grad.linear(ci, ci + 1) { dw, db in
      Ops.linearBackward(dinp: needPooled ? ws.dpooled.p : nil, dw: dw, db: db, dout: ws.dlogits.p,
                         inp: ws.pooledDrop.p, w: params + layout.slots[ci].offset, n: B, i: H, o: C)
    }
    guard needPooled else { return }
    let pc: Float = training ? classifierDropout : 0
    Dropout.apply(ws.dpooled.p, offsets: ws.clsOffsets, exampleIds: ids, cols: H, p: pc, base: key(.classifier))
    // pooler: dz = dpooled ∘ (1 - pooled²); dWp += dzᵀ · cls; dcls = dz · Wp
    Ops.tanhBackward(ws.dpooled.p, dy: ws.dpooled.p, y: ws.pooled.p, count: B * H)
    let pi = layout.slotIndex(named: "pooler.dense.weight")!
    let needCls = trainable.lowestLayer < L
    grad.linear(pi, pi + 1) { dw, db in
      Ops.linearBackward(dinp: needCls ? ws.dcls.p : nil, dw: dw, db: db, dout: ws.dpooled.p,
                         inp: ws.cls.p, w: params + layout.slots[pi].offset, n: B, i: H, o: H)
    }
    guard needCls else { return }
    precondition(ws.geluSlopeStored, "backward: the forward ran with forBackward: false")
    // Deepest stage layer l must reach: 6 = the layer input (something below trains).
    func stageOf(_ l: Int) -> Int {
      func si(_ m: ModuleKind) -> Int { layout.slotIndex(m, l) }
      if trainable.lowestLayer < l { return 6 }
      var s = 0
      for (i, m) in [ModuleKind.lnOut, .output, .intermediate, .lnAttn, .attnOut].enumerated()
      where grad.trains(si(m)) || grad.trains(si(m) + 1) { s = i }
      for m in [ModuleKind.query, .key, .value] where grad.trains(si(m)) || grad.trains(si(m) + 1) { s = 5 }
      return s
    }

    var l = L - 1
    if ws.clsOnlyLastLayer {
      // The last layer ran for the [CLS] rows only: its backward does too, down to dx_{L-1}.
      guard backwardLastLayerCLS(batch, ws: ws, grad: grad, stage: stageOf(l), ph: ph, pa: pa,
                                 key: { key($0, $1) }) else { return }
      l -= 1
    } else {
      // dx_L: the [CLS] rows get dcls, every other row 0
      Ops.zero(ws.dx.p, count: N * H)
      for b in 0..<B { (ws.dx.p + offs[b] * H).update(from: ws.dcls.p + b * H, count: H) }
    }

    while l >= max(trainable.lowestLayer, 0) {
      func w(_ m: ModuleKind) -> UnsafeMutablePointer<Float> { params + layout.offset(m, l) }
      func si(_ m: ModuleKind) -> Int { layout.slotIndex(m, l) }
      let stage = stageOf(l)
      // LN2: dr2 [N,H] is the residual branch's gradient (straight into dy1) and, through the
      // dropout, the output dense's (dtmp), both from one pass
      grad.layerNorm(si(.lnOut)) { dg, db in
        Ops.layerNormBackward(dinp: stage > 2 ? ws.dy1.p : nil, dropped: stage > 0 ? ws.dtmp.p : nil,
                              dropout: rows(ph, key(.ffnOutput, l)), dgamma: dg, dbeta: db, dout: ws.dx.p,
                              xhat: ws.xhat2[l].p, rstd: ws.rstd2[l].p, gamma: w(.lnOut), c: H)
      }
      if stage == 0 { break }
      // output dense: dg [N,I] = do · Wo ; dWo += doᵀ · g
      grad.linear(si(.output), si(.output) + 1) { dw, db in
        Ops.linearBackward(dinp: stage > 1 ? ws.dI.p : nil, dw: dw, db: db, dout: ws.dtmp.p,
                           inp: ws.g[l].p, w: w(.output), n: N, i: I, o: H)
      }
      if stage == 1 { break }
      // gelu, then intermediate dense: dy1 [N,H] = dr2 + du · Wi ; dWi += duᵀ · y1
      Ops.geluBackward(ws.dI.p, dg: ws.dI.p, slope: ws.u[l].p, count: N * I)
      grad.linear(si(.intermediate), si(.intermediate) + 1) { dw, db in
        Ops.linearBackward(dinp: stage > 2 ? ws.dy1.p : nil, accumulateInput: true, dw: dw, db: db,
                           dout: ws.dI.p, inp: ws.y1[l].p, w: w(.intermediate), n: N, i: H, o: I)
      }
      if stage == 2 { break }
      // LN1: dr1 [N,H] is the residual branch's gradient (straight into dxIn) and, through the
      // dropout, the attention output dense's (dtmp)
      let below = stage > 5
      grad.layerNorm(si(.lnAttn)) { dg, db in
        Ops.layerNormBackward(dinp: below ? ws.dxIn.p : nil, dropped: stage > 3 ? ws.dtmp.p : nil,
                              dropout: rows(ph, key(.attentionOutput, l)), dgamma: dg, dbeta: db, dout: ws.dy1.p,
                              xhat: ws.xhat1[l].p, rstd: ws.rstd1[l].p, gamma: w(.lnAttn), c: H)
      }
      if stage == 3 { break }
      // attention output dense: dctx [N,H] = da · Wa
      grad.linear(si(.attnOut), si(.attnOut) + 1) { dw, db in
        Ops.linearBackward(dinp: stage > 4 ? ws.dctx.p : nil, dw: dw, db: db, dout: ws.dtmp.p,
                           inp: ws.ctx[l].p, w: w(.attnOut), n: N, i: H, o: H)
      }
      if stage == 4 { break }
      // attention: dq, dk, dv [N,H]
      Attention.backward(dq: ws.dq.p, dk: ws.dk.p, dv: ws.dv.p, dctx: ws.dctx.p, probs: ws.probs[l].p,
                         q: ws.q[l].p, k: ws.k[l].p, v: ws.v[l].p, offsets: offs, exampleIds: ids,
                         hidden: H, heads: dims.heads, dropout: pa, dropoutBase: key(.attentionProbs, l),
                         scratch: ws.attnScratch.p, maxLen: ws.maxLen)
      // q, k, v dense: dx_in [N,H] = dr1 (residual, already there) + dq·Wq + dk·Wk + dv·Wv
      // three calls, not a loop over an array literal: no allocation per layer and step
      func projection(_ m: ModuleKind, _ d: UnsafeMutablePointer<Float>) {
        grad.linear(si(m), si(m) + 1) { dw, db in
          Ops.linearBackward(dinp: below ? ws.dxIn.p : nil, accumulateInput: true, dw: dw, db: db,
                             dout: d, inp: ws.x[l].p, w: w(m), n: N, i: H, o: H)
        }
      }
      projection(.query, ws.dq.p)
      projection(.key, ws.dk.p)
      projection(.value, ws.dv.p)
      if !below { break }
      swap(&ws.dx, &ws.dxIn)
      l -= 1
    }
    guard trainable.lowestLayer < 0 else { return }

    // embeddings: dropout, LN0, then scatter into the word / position / token-type tables
    Dropout.apply(ws.dx.p, offsets: offs, exampleIds: ids, cols: H, p: ph, base: key(.embeddings))
    grad.layerNorm(3) { dg, db in
      Ops.layerNormBackward(dinp: ws.dr.p, dgamma: dg, dbeta: db, dout: ws.dx.p, xhat: ws.xhat0.p,
                            rstd: ws.rstd0.p, gamma: params + layout.slots[3].offset, n: N, c: H)
    }
    // Scatter-adds split by columns: each table element gets its rows' terms in row order.
    let dr = ws.dr.p
    func scatter(_ g: UnsafeMutablePointer<Float>, _ index: (Int) -> Int) {
      Parallel.forColumns(H, rows: N) { lo, hi in
        for r in 0..<N {
          let dst = g + index(r) * H + lo, src = dr + r * H + lo
          forEachBlock(hi - lo) { i, l in store16(load16(dst, i, l) + load16(src, i, l), dst, i, l) }
        }
      }
    }
    batch.inputIds.withUnsafeBufferPointer { ids in grad.single(0) { g in scatter(g) { Int(ids[$0]) } } }
    batch.tokenTypes.withUnsafeBufferPointer { types in grad.single(2) { g in scatter(g) { Int(types[$0]) } } }
    // position of packed row r: r - offsets[b]; rows of sequence b are contiguous
    offs.withUnsafeBufferPointer { o in
      grad.single(1) { g in
        Parallel.forColumns(H, rows: N) { lo, hi in
          for b in 0..<B {
            for t in 0..<(o[b + 1] - o[b]) {
              let dst = g + t * H + lo, src = dr + (o[b] + t) * H + lo
              forEachBlock(hi - lo) { i, l in store16(load16(dst, i, l) + load16(src, i, l), dst, i, l) }
            }
          }
        }
      }
    }
  }
}

extension BertModel {
  /// Backward of `forwardLastLayerCLS` from dcls [B,H]. Returns true when it went down to the
  /// layer input (then `ws.dx` holds dx_{L-1} [N,H]); false when nothing below needs a gradient.
  fileprivate func backwardLastLayerCLS(_ batch: Batch, ws: Workspace, grad: GradientTargets, stage: Int,
                                        ph: Float, pa: Float, key: (DropoutSite, Int) -> UInt64) -> Bool {
    let H = dims.hidden, I = dims.intermediate, N = batch.tokens, B = batch.count, l = dims.layers - 1
    func w(_ m: ModuleKind) -> UnsafeMutablePointer<Float> { params + layout.offset(m, l) }
    func si(_ m: ModuleKind) -> Int { layout.slotIndex(m, l) }
    let co = ws.clsOffsets, ids = batch.exampleIds, offs = batch.offsets
    func rows(_ p: Float, _ base: UInt64) -> RowDropout { RowDropout(offsets: co, exampleIds: ids, p: p, base: base) }
    // LN2: dr2 [B,H] into dy1 (residual) and, through the dropout, dtmp (output dense)
    grad.layerNorm(si(.lnOut)) { dg, db in
      Ops.layerNormBackward(dinp: stage > 2 ? ws.dy1.p : nil, dropped: stage > 0 ? ws.dtmp.p : nil,
                            dropout: rows(ph, key(.ffnOutput, l)), dgamma: dg, dbeta: db, dout: ws.dcls.p,
                            xhat: ws.xhat2[l].p, rstd: ws.rstd2[l].p, gamma: w(.lnOut), c: H)
    }
    if stage == 0 { return false }
    grad.linear(si(.output), si(.output) + 1) { dw, db in
      Ops.linearBackward(dinp: stage > 1 ? ws.dI.p : nil, dw: dw, db: db, dout: ws.dtmp.p,
                         inp: ws.g[l].p, w: w(.output), n: B, i: I, o: H)
    }
    if stage == 1 { return false }
    Ops.geluBackward(ws.dI.p, dg: ws.dI.p, slope: ws.u[l].p, count: B * I)
    grad.linear(si(.intermediate), si(.intermediate) + 1) { dw, db in
      Ops.linearBackward(dinp: stage > 2 ? ws.dy1.p : nil, accumulateInput: true, dw: dw, db: db,
                         dout: ws.dI.p, inp: ws.y1[l].p, w: w(.intermediate), n: B, i: H, o: I)
    }
    if stage == 2 { return false }
    // LN1: dr1 [B,H] into dr (residual, added at the [CLS] rows below) and, through the dropout, dtmp
    grad.layerNorm(si(.lnAttn)) { dg, db in
      Ops.layerNormBackward(dinp: stage > 5 ? ws.dr.p : nil, dropped: stage > 3 ? ws.dtmp.p : nil,
                            dropout: rows(ph, key(.attentionOutput, l)), dgamma: dg, dbeta: db, dout: ws.dy1.p,
                            xhat: ws.xhat1[l].p, rstd: ws.rstd1[l].p, gamma: w(.lnAttn), c: H)
    }
    if stage == 3 { return false }
    grad.linear(si(.attnOut), si(.attnOut) + 1) { dw, db in
      Ops.linearBackward(dinp: stage > 4 ? ws.dctx.p : nil, dw: dw, db: db, dout: ws.dtmp.p,
                         inp: ws.ctx[l].p, w: w(.attnOut), n: B, i: H, o: H)
    }
    if stage == 4 { return false }
    // attention: dq [B,H] for the [CLS] queries, dk, dv [N,H]
    Attention.backwardCLS(dq: ws.dq.p, dk: ws.dk.p, dv: ws.dv.p, dctx: ws.dctx.p, probs: ws.probs[l].p,
                          q: ws.q[l].p, k: ws.k[l].p, v: ws.v[l].p, offsets: offs, exampleIds: ids,
                          hidden: H, heads: dims.heads, dropout: pa, dropoutBase: key(.attentionProbs, l),
                          scratch: ws.attnScratch.p, maxLen: ws.maxLen)
    // dx_in [N,H] = dk·Wk + dv·Wv, plus at the [CLS] rows dr1 (residual) + dq·Wq
    let below = stage > 5
    grad.linear(si(.key), si(.key) + 1) { dw, db in
      Ops.linearBackward(dinp: below ? ws.dxIn.p : nil, accumulateInput: false, dw: dw, db: db,
                         dout: ws.dk.p, inp: ws.x[l].p, w: w(.key), n: N, i: H, o: H)
    }
    grad.linear(si(.value), si(.value) + 1) { dw, db in
      Ops.linearBackward(dinp: below ? ws.dxIn.p : nil, accumulateInput: true, dw: dw, db: db,
                         dout: ws.dv.p, inp: ws.x[l].p, w: w(.value), n: N, i: H, o: H)
    }
    grad.linear(si(.query), si(.query) + 1) { dw, db in
      Ops.linearBackward(dinp: below ? ws.dtmp.p : nil, accumulateInput: false, dw: dw, db: db,
                         dout: ws.dq.p, inp: ws.clsIn.p, w: w(.query), n: B, i: H, o: H)
    }
    guard below else { return false }
    for b in 0..<B {
      let dst = ws.dxIn.p + offs[b] * H
      Ops.addInPlace(dst, ws.dtmp.p + b * H, count: H)
      Ops.addInPlace(dst, ws.dr.p + b * H, count: H)
    }
    swap(&ws.dx, &ws.dxIn)
    return true
  }
}

/// Resolves where the backward pass writes each slot's gradient: straight into the gradient slab
/// for a wholly trainable tensor; for a partly trainable one (the `random` control) only its
/// trainable entries of a weight matrix, and zeroed scratch (then gathered) for a vector or a
/// table; nowhere (nil) for a frozen one.
struct GradientTargets {
  let trainable: TrainableSet
  let grads: UnsafeMutablePointer<Float>
  let ws: Workspace

  func trains(_ slot: Int) -> Bool { trainable.slotGradients[slot] != nil }

  /// A weight slot and its bias slot (consecutive in the layout).
  func linear(_ wSlot: Int, _ bSlot: Int, _ body: (WeightGradient?, UnsafeMutablePointer<Float>?) -> Void) {
    let dw: WeightGradient?
    switch trainable.slotGradients[wSlot] {
    case nil: dw = nil
    case .full(let g)?: dw = .dense(grads + g)
    case .partial(let g, let indices)?: dw = .entries(grads + g, indices)
    }
    let scrB = needsScratch(bSlot) ? ws.partialScratch(trainable.layout.slots[bSlot].count).1 : grads
    body(dw, target(bSlot, scratch: scrB))
    gather(bSlot, from: scrB)
  }

  /// A LayerNorm's gain and bias (consecutive in the layout).
  func layerNorm(_ gammaSlot: Int, _ body: (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void) {
    let (scrG, scrB) = needsScratch(gammaSlot) || needsScratch(gammaSlot + 1)
      ? ws.partialScratch(trainable.layout.slots[gammaSlot].count) : (grads, grads)
    body(target(gammaSlot, scratch: scrG), target(gammaSlot + 1, scratch: scrB))
    gather(gammaSlot, from: scrG)
    gather(gammaSlot + 1, from: scrB)
  }

  func single(_ slot: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
    let s = trainable.layout.slots[slot]
    let scr = needsScratch(slot) ? ws.partialScratch(s.count).0 : grads
    guard let t = target(slot, scratch: scr) else { return }
    body(t)
    gather(slot, from: scr)
  }

  private func needsScratch(_ slot: Int) -> Bool {
    if case .partial = trainable.slotGradients[slot] { return true }
    return false
  }

  private func target(_ slot: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float>? {
    switch trainable.slotGradients[slot] {
    case nil: return nil
    case .full(let g): return grads + g
    case .partial:
      scratch.update(repeating: 0, count: trainable.layout.slots[slot].count)
      return scratch
    }
  }

  private func gather(_ slot: Int, from scratch: UnsafeMutablePointer<Float>) {
    guard case .partial(let g, let idx) = trainable.slotGradients[slot] else { return }
    for (k, e) in idx.enumerated() { grads[g + k] += scratch[e] }
  }
}

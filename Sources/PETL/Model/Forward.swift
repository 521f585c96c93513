import Foundation

/// Dropout sites: with the step key, layer and example they make every mask reproducible.
enum DropoutSite: UInt64 { case embeddings = 1, attentionProbs, attentionOutput, ffnOutput, classifier }

extension BertModel {
  /// How far the forward pass goes: `encoder` stops at the last hidden states (for `embed`),
  /// `logits` runs the pooler and head too.
  /// `logits` computes the last layer for the [CLS] rows only (all the head reads; K and V still
  /// use every row), `logitsAllRows` runs it for every token (same logits; for checks).
  public enum ForwardDepth { case encoder, logits, logitsAllRows }

  /// Forward pass over a packed batch. In training mode dropout draws from `dropoutKey` (one key per
  /// optimizer step); in eval mode no dropout. Activations stay in `ws` for `backward`; with
  /// `forBackward` false (evaluation, embedding, the prefix-cache fill) the forward skips what only
  /// the backward reads (GELU's slope, stored in place of the pre-activation u).
  ///
  /// Frozen-prefix cache: with `startLayer` s > 0 the embeddings and layers 0..<s are skipped and
  /// `ws.layerInput(s)` must already hold the hidden states entering layer s for this batch's
  /// rows (packed like the batch), e.g. copied from a cache filled by an eval forward
  /// (`forward(..., training: false, depth: .encoder)`, then `ws.layerInput(s)`). That equals the
  /// full forward exactly when the frozen layers run without dropout. `backward` must then not go
  /// below layer s (the trainable set's lowest layer >= s; checked).
  public func forward(_ batch: Batch, ws: Workspace, training: Bool, dropoutKey: UInt64 = 0,
                      depth: ForwardDepth = .logits, startLayer: Int = 0, endLayer: Int? = nil,
                      forBackward: Bool = true) {
    ws.reserve(for: batch)
    ws.geluSlopeStored = forBackward
    precondition(startLayer >= 0 && startLayer < dims.layers, "forward: startLayer \(startLayer) out of range")
    ws.startLayer = startLayer
    let H = dims.hidden, I = dims.intermediate, N = batch.tokens, B = batch.count
    let ph: Float = training ? hiddenDropout : 0
    let pa: Float = training ? attentionDropout : 0
    func key(_ site: DropoutSite, _ layer: Int = 0) -> UInt64 { CounterRNG.key(dropoutKey, site.rawValue, UInt64(layer)) }
    func rows(_ p: Float, _ base: UInt64) -> RowDropout {
      RowDropout(offsets: batch.offsets, exampleIds: batch.exampleIds, p: p, base: base)
    }

    // embeddings: x0[N,H] = LN(word[id] + position[t] + type[tt]), dropout
    if startLayer == 0 {
    let word = params + layout.slots[0].offset, pos = params + layout.slots[1].offset
    let typ = params + layout.slots[2].offset
    let e = ws.dtmp.p  // pre-LN sum; scratch
    batch.offsets.withUnsafeBufferPointer { offs in
      batch.inputIds.withUnsafeBufferPointer { ids in
        batch.tokenTypes.withUnsafeBufferPointer { types in
          Parallel.forRanges(B, minChunk: N * H >= 1 << 15 ? 1 : B) { _, seqs in
            for b in seqs {
              let o = offs[b]
              for t in 0..<(offs[b + 1] - o) {
                let row = e + (o + t) * H
                let w = word + Int(ids[o + t]) * H, pp = pos + t * H, ty = typ + Int(types[o + t]) * H
                forEachBlock(H) { i, l in store16(load16(w, i, l) + load16(pp, i, l) + load16(ty, i, l), row, i, l) }
              }
            }
          }
        }
      }
    }
    Ops.layerNormForward(ws.x[0].p, xhat: ws.xhat0.p, rstd: ws.rstd0.p, e,
                         gamma: params + layout.slots[3].offset, beta: params + layout.slots[4].offset,
                         n: N, c: H, eps: dims.layerNormEps)
    Dropout.apply(ws.x[0].p, offsets: batch.offsets, exampleIds: batch.exampleIds, cols: H, p: ph, base: key(.embeddings))
    }

    // `endLayer` e: stop once x[e] (the input of layer e) is computed: the frozen-prefix cache's fill pass.
    let end = min(endLayer ?? dims.layers, dims.layers)
    let clsOnly = depth == .logits && end == dims.layers
    ws.clsOnlyLastLayer = clsOnly
    if ws.clsOffsets.count != B + 1 { ws.clsOffsets = Array(0...B) }
    for l in startLayer..<end {
      if clsOnly && l == dims.layers - 1 {
        forwardLastLayerCLS(batch, ws: ws, ph: ph, pa: pa, key: { key($0, $1) })
        break
      }
      let x = ws.x[l].p
      func w(_ m: ModuleKind) -> UnsafeMutablePointer<Float> { params + layout.offset(m, l) }
      func b(_ m: ModuleKind) -> UnsafeMutablePointer<Float> { params + layout.offset(m, l, bias: true) }
      // q, k, v [N,H] = x · Wᵀ + b
      Ops.linearForward(ws.q[l].p, x, w(.query), b(.query), n: N, i: H, o: H)
      Ops.linearForward(ws.k[l].p, x, w(.key), b(.key), n: N, i: H, o: H)
      Ops.linearForward(ws.v[l].p, x, w(.value), b(.value), n: N, i: H, o: H)
      // ctx [N,H] = softmax(q kᵀ/√d) v, per sequence and head
      Attention.forward(ctx: ws.ctx[l].p, probs: ws.probs[l].p, q: ws.q[l].p, k: ws.k[l].p, v: ws.v[l].p,
                        offsets: batch.offsets, exampleIds: batch.exampleIds, hidden: H, heads: dims.heads,
                        dropout: pa, dropoutBase: key(.attentionProbs, l), scratch: ws.attnScratch.p,
                        maxLen: ws.maxLen)
      // y1 [N,H] = LN1(dropout(ctx · Waᵀ + ba) + x)
      let r1 = ws.dtmp.p
      Ops.linearForward(r1, ws.ctx[l].p, w(.attnOut), b(.attnOut), n: N, i: H, o: H)
      Ops.residualLayerNormForward(ws.y1[l].p, xhat: ws.xhat1[l].p, rstd: ws.rstd1[l].p, r1, residual: x,
                                   gamma: w(.lnAttn), beta: b(.lnAttn), c: H, eps: dims.layerNormEps,
                                   dropout: rows(ph, key(.attentionOutput, l)))
      // u [N,I] = y1 · Wiᵀ + bi ;  g = gelu(u)  (u becomes GELU's slope when a backward follows)
      Ops.linearForward(ws.u[l].p, ws.y1[l].p, w(.intermediate), b(.intermediate), n: N, i: H, o: I)
      Ops.geluForward(ws.g[l].p, ws.u[l].p, count: N * I, slope: ws.geluSlopeStored ? ws.u[l].p : nil)
      // x[l+1] [N,H] = LN2(dropout(g · Woᵀ + bo) + y1)
      let r2 = ws.dtmp.p
      Ops.linearForward(r2, ws.g[l].p, w(.output), b(.output), n: N, i: I, o: H)
      Ops.residualLayerNormForward(ws.x[l + 1].p, xhat: ws.xhat2[l].p, rstd: ws.rstd2[l].p, r2, residual: ws.y1[l].p,
                                   gamma: w(.lnOut), beta: b(.lnOut), c: H, eps: dims.layerNormEps,
                                   dropout: rows(ph, key(.ffnOutput, l)))
    }
    guard depth != .encoder, end == dims.layers else { return }

    // pooler: pooled [B,H] = tanh(x_L[CLS] · Wpᵀ + bp); logits [B,C] = dropout(pooled) · Wcᵀ + bc
    if !clsOnly {
      let xL = ws.x[dims.layers].p
      for bi in 0..<B { (ws.cls.p + bi * H).update(from: xL + batch.offsets[bi] * H, count: H) }
    }
    let wp = pointer(named: "pooler.dense.weight")!, bp = pointer(named: "pooler.dense.bias")!
    Ops.linearForward(ws.pooled.p, ws.cls.p, wp, bp, n: B, i: H, o: H)
    Ops.tanhForward(ws.pooled.p, ws.pooled.p, count: B * H)
    classify(batch, ws: ws, training: training, dropoutKey: dropoutKey)
  }

  /// The classifier on `ws.pooled` [B,H]: logits [B,C] = dropout(pooled) · Wcᵀ + bc. The tail of
  /// `forward`, and on its own the whole forward of a head-only cell whose pooled outputs are cached
  /// (`PrefixCache` at the encoder's top): nothing below the head runs, so backward stays in it.
  func classify(_ batch: Batch, ws: Workspace, training: Bool, dropoutKey: UInt64) {
    let H = dims.hidden, B = batch.count
    if ws.clsOffsets.count != B + 1 { ws.clsOffsets = Array(0...B) }
    ws.pooledDrop.p.update(from: ws.pooled.p, count: B * H)
    let pc: Float = training ? classifierDropout : 0
    Dropout.apply(ws.pooledDrop.p, offsets: ws.clsOffsets, exampleIds: batch.exampleIds, cols: H, p: pc,
                  base: CounterRNG.key(dropoutKey, DropoutSite.classifier.rawValue, 0))
    let wc = pointer(named: "classifier.weight")!, bc = pointer(named: "classifier.bias")!
    Ops.linearForward(ws.logits.p, ws.pooledDrop.p, wc, bc, n: B, i: H, o: dims.numLabels)
  }

  /// The last layer for the [CLS] rows only: K, V [N,H] over every row; Q, attention, attention
  /// output, LN1, FFN and LN2 over the B [CLS] rows (compact), ending in `ws.cls`. Same dropout
  /// streams and counters as the full layer (a [CLS] row is token 0 of its example).
  private func forwardLastLayerCLS(_ batch: Batch, ws: Workspace, ph: Float, pa: Float,
                                   key: (DropoutSite, Int) -> UInt64) {
    let H = dims.hidden, I = dims.intermediate, N = batch.tokens, B = batch.count, l = dims.layers - 1
    func w(_ m: ModuleKind) -> UnsafeMutablePointer<Float> { params + layout.offset(m, l) }
    func b(_ m: ModuleKind) -> UnsafeMutablePointer<Float> { params + layout.offset(m, l, bias: true) }
    let x = ws.x[l].p, xc = ws.clsIn.p, co = ws.clsOffsets
    for bi in 0..<B { (xc + bi * H).update(from: x + batch.offsets[bi] * H, count: H) }
    Ops.linearForward(ws.k[l].p, x, w(.key), b(.key), n: N, i: H, o: H)
    Ops.linearForward(ws.v[l].p, x, w(.value), b(.value), n: N, i: H, o: H)
    Ops.linearForward(ws.q[l].p, xc, w(.query), b(.query), n: B, i: H, o: H)
    Attention.forwardCLS(ctx: ws.ctx[l].p, probs: ws.probs[l].p, q: ws.q[l].p, k: ws.k[l].p, v: ws.v[l].p,
                         offsets: batch.offsets, exampleIds: batch.exampleIds, hidden: H, heads: dims.heads,
                         dropout: pa, dropoutBase: key(.attentionProbs, l), scratch: ws.attnScratch.p, maxLen: ws.maxLen)
    let r1 = ws.dtmp.p
    Ops.linearForward(r1, ws.ctx[l].p, w(.attnOut), b(.attnOut), n: B, i: H, o: H)
    Ops.residualLayerNormForward(ws.y1[l].p, xhat: ws.xhat1[l].p, rstd: ws.rstd1[l].p, r1, residual: xc,
                                 gamma: w(.lnAttn), beta: b(.lnAttn), c: H, eps: dims.layerNormEps,
                                 dropout: RowDropout(offsets: co, exampleIds: batch.exampleIds, p: ph, base: key(.attentionOutput, l)))
    Ops.linearForward(ws.u[l].p, ws.y1[l].p, w(.intermediate), b(.intermediate), n: B, i: H, o: I)
    Ops.geluForward(ws.g[l].p, ws.u[l].p, count: B * I, slope: ws.geluSlopeStored ? ws.u[l].p : nil)
    let r2 = ws.dtmp.p
    Ops.linearForward(r2, ws.g[l].p, w(.output), b(.output), n: B, i: I, o: H)
    Ops.residualLayerNormForward(ws.cls.p, xhat: ws.xhat2[l].p, rstd: ws.rstd2[l].p, r2, residual: ws.y1[l].p,
                                 gamma: w(.lnOut), beta: b(.lnOut), c: H, eps: dims.layerNormEps,
                                 dropout: RowDropout(offsets: co, exampleIds: batch.exampleIds, p: ph, base: key(.ffnOutput, l)))
  }

  /// Loss of the last forward pass (cross-entropy, or MSE when numLabels == 1), summed over the
  /// batch and divided by `divisor` (the GLOBAL batch size under data parallelism, so shards' losses
  /// and gradients add up to the full batch's). Also writes dloss/dlogits for `backward`.
  @discardableResult
  public func loss(_ batch: Batch, ws: Workspace, divisor: Int? = nil) -> Double {
    let B = batch.count, C = dims.numLabels
    let inv = 1 / Float(divisor ?? B)
    var total: Double = 0
    for b in 0..<B {
      let z = ws.logits.p + b * C, dz = ws.dlogits.p + b * C
      if C == 1 {
        let diff = z[0] - batch.labels[b]
        total += Double(diff * diff)
        dz[0] = 2 * diff * inv
      } else {
        var m = Double(z[0])
        for c in 1..<C { m = max(m, Double(z[c])) }
        var s = 0.0
        for c in 0..<C { s += Foundation.exp(Double(z[c]) - m) }
        let y = Int(batch.labels[b])
        total += (Foundation.log(s) + m) - Double(z[y])
        for c in 0..<C { dz[c] = Float(Foundation.exp(Double(z[c]) - m) / s - (c == y ? 1 : 0)) * inv }
      }
    }
    return total * Double(inv)
  }
}


import Foundation
import PETLKernels

/// Dropout sites: with the step key, layer and example they make every mask reproducible.
enum DropoutSite: UInt64 { case embeddings = 1, attentionProbs, attentionOutput, ffnOutput, classifier, headInput, lora }

/// Which rows a layer computes after its key and value projections: every token, or only each
/// example's [CLS] row (all the head reads of the last layer; K and V still use every row).
public enum QueryRows: Sendable { case all, cls }

/// What a forward pass left in the workspace, for the backward pass that follows it.
public struct ForwardPass: Sendable {
  /// First layer computed: 0 from the embeddings, s > 0 from a cached `layerInput(s)`, the number of
  /// layers when only the classifier ran (on cached pooled outputs).
  public let startLayer: Int
  /// Rows the last layer computed (`.cls`: compact [CLS] rows, see `QueryRows`).
  public let lastLayerRows: QueryRows
  /// GELU's slope was stored in place of its input (a backward may follow).
  public let storedSlope: Bool
}

extension EncoderModel {
  /// How far the forward pass goes: `encoder` stops at the last hidden states (for `embed`),
  /// `logits` runs the head too.
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
  /// below layer s (the gradient plan's lowest layer >= s; checked).
  @discardableResult
  public func forward(_ batch: Batch, ws: Workspace, training: Bool, dropoutKey: UInt64 = 0,
                      depth: ForwardDepth = .logits, startLayer: Int = 0, endLayer: Int? = nil,
                      forBackward: Bool = true) -> ForwardPass {
    ws.use(precision)
    ws.use(lora: layout.lora)
    ws.reserve(for: batch)
    precondition(startLayer >= 0 && startLayer < dims.layers, "forward: startLayer \(startLayer) out of range")
    let H = dims.hidden, B = batch.count
    let ph: Float = training ? hiddenDropout : 0
    let pa: Float = training ? attentionDropout : 0
    let pl: Float = training ? Float(layout.lora?.dropout ?? 0) : 0
    func key(_ site: DropoutSite, _ layer: Int = 0) -> UInt64 { CounterRNG.key(dropoutKey, site.rawValue, UInt64(layer)) }

    if startLayer == 0 { embeddingsForward(batch, ws: ws, p: ph, key: key(.embeddings)) }

    // `endLayer` e: stop once x[e] (the input of layer e) is computed: the frozen-prefix cache's fill pass.
    let end = min(endLayer ?? dims.layers, dims.layers)
    let lastRows: QueryRows = depth == .logits && end == dims.layers ? .cls : .all
    if ws.clsOffsets.count != B + 1 { ws.clsOffsets = Array(0...B) }
    for l in startLayer..<end {
      let rows: QueryRows = l == dims.layers - 1 ? lastRows : .all
      if precision == .bf16 {
        layerForwardBF16(l, batch, ws: ws, rows: rows, ph: ph, pa: pa, pl: pl, storeSlope: forBackward, key: { key($0, $1) })
      } else {
        layerForward(l, batch, ws: ws, rows: rows, ph: ph, pa: pa, pl: pl, storeSlope: forBackward, key: { key($0, $1) })
      }
    }
    let pass = ForwardPass(startLayer: startLayer, lastLayerRows: lastRows, storedSlope: forBackward)
    guard depth != .encoder, end == dims.layers else { return pass }

    // the head reads each example's [CLS] row of the last layer
    if lastRows == .all {
      let xL = ws.x[dims.layers].p
      for bi in 0..<B { (ws.cls.p + bi * H).update(from: xL + batch.offsets[bi] * H, count: H) }
    }
    head(batch, ws: ws, training: training, dropoutKey: dropoutKey, from: .cls, forBackward: forBackward)
    return pass
  }

  /// Where the head starts: at the last layer's [CLS] rows (`ws.cls`), or, for a head-only cell
  /// whose dense layer is frozen (BERT's pooler), at the dense layer's cached output (`ws.pooled`).
  public enum HeadInput: Sendable { case cls, pooled }

  /// What a head-only cell's forward starts from: BERT's frozen pooler output, or (the families
  /// whose head dense layer trains with the head) the [CLS] rows.
  public var headOnlyInput: HeadInput { dims.family.hasPooler ? .pooled : .cls }

  /// The head on [CLS]: pooled [B,H] = act(dropout?(cls) · Wdᵀ + bd) (BERT: the pooler, tanh; RoBERTa
  /// and ELECTRA drop the input first), logits [B,C] = dropout(pooled) · Woᵀ + bo. The tail of
  /// `forward`, and on its own the whole forward of a head-only cell (`PrefixCache` at the encoder's
  /// top): nothing below the head runs, so backward stays in it.
  @discardableResult
  public func head(_ batch: Batch, ws: Workspace, training: Bool, dropoutKey: UInt64, from input: HeadInput,
                   forBackward: Bool = true) -> ForwardPass {
    let H = dims.hidden, B = batch.count, family = dims.family
    if ws.clsOffsets.count != B + 1 { ws.clsOffsets = Array(0...B) }
    let pc: Float = training ? classifierDropout : 0
    func key(_ site: DropoutSite) -> UInt64 { CounterRNG.key(dropoutKey, site.rawValue, 0) }
    if input == .cls {
      let dense = layout.head.dense
      let x = headDenseInput(ws)
      if family.dropsHeadInput {
        x.update(from: ws.cls.p, count: B * H)
        Dropout.apply(x, offsets: ws.clsOffsets, exampleIds: batch.exampleIds, cols: H, p: pc, base: key(.headInput))
      }
      // pooled [B,H] = act(x · Wdᵀ + bd)
      linearForward(ws.pooled.p, x, dense, n: B, i: H, o: H, ws: ws)
      switch family.headActivation {
      case .tanh: Ops.tanhForward(ws.pooled.p, ws.pooled.p, count: B * H)
      case .relu: Ops.reluForward(ws.pooled.p, ws.pooled.p, count: B * H)
      case .gelu: Ops.geluForward(ws.pooled.p, ws.pooled.p, count: B * H, slope: forBackward ? ws.headSlope.p : nil)
      }
    }
    // logits [B,C] = dropout(pooled) · Woᵀ + bo
    ws.pooledDrop.p.update(from: ws.pooled.p, count: B * H)
    Dropout.apply(ws.pooledDrop.p, offsets: ws.clsOffsets, exampleIds: batch.exampleIds, cols: H, p: pc, base: key(.classifier))
    let out = layout.head.out
    linearForward(ws.logits.p, ws.pooledDrop.p, out, n: B, i: H, o: dims.numLabels, ws: ws)
    return ForwardPass(startLayer: dims.layers, lastLayerRows: .all, storedSlope: forBackward)
  }

  /// The head dense layer's input: the [CLS] rows as they are, or a dropped copy (RoBERTa, ELECTRA).
  func headDenseInput(_ ws: Workspace) -> UnsafeMutablePointer<Float> {
    dims.family.dropsHeadInput ? ws.clsDrop.p : ws.cls.p
  }

  /// x0 [N,H] = project?(dropout(LN(word[id] + position[p] + type?[tt]))), the tables and the
  /// LayerNorm `embedding` wide (ELECTRA projects them to the hidden width; the others are as wide).
  private func embeddingsForward(_ batch: Batch, ws: Workspace, p: Float, key: UInt64) {
    precondition(batch.maxLength <= dims.maxTokens, "forward: a sequence of \(batch.maxLength) tokens exceeds the position table")
    let emb = layout.embeddings, E = dims.embedding, N = batch.tokens
    let e = ws.dtmp.p  // pre-LN sum; scratch
    Ops.embeddingSum(e, word: params + emb.word.offset, position: params + emb.position.offset,
                     type: emb.tokenType.map { params + $0.offset }, ids: batch.inputIds, types: batch.tokenTypes,
                     positions: ws.positionIds(for: batch), offsets: batch.offsets, hidden: E)
    let out = emb.project == nil ? ws.x[0].p : ws.embedded.p
    Ops.layerNormForward(out, xhat: ws.xhat0.p, rstd: ws.rstd0.p, e,
                         gamma: params + emb.layerNorm.weight, beta: params + emb.layerNorm.bias,
                         n: N, c: E, eps: dims.layerNormEps)
    Dropout.apply(out, offsets: batch.offsets, exampleIds: batch.exampleIds, cols: E, p: p, base: key)
    if let pr = emb.project {
      // x0 [N,H] = e · Wpᵀ + bp
      linearForward(ws.x[0].p, out, pr, n: N, i: E, o: dims.hidden, ws: ws)
    }
  }

  /// Encoder layer `l` from `ws.x[l]`. K and V [N,H] over every row; Q and everything after
  /// attention over R rows: all N (the output in `ws.x[l+1]`), or (`.cls`) the B [CLS] rows, compact,
  /// their inputs gathered into `ws.clsIn` and the output in `ws.cls`. The [CLS] rows keep the dropout
  /// streams and counters of the full layer (a [CLS] row is token 0 of its example).
  private func layerForward(_ l: Int, _ batch: Batch, ws: Workspace, rows: QueryRows, ph: Float, pa: Float, pl: Float,
                            storeSlope: Bool, key: (DropoutSite, Int) -> UInt64) {
    let H = dims.hidden, I = dims.intermediate, N = batch.tokens, B = batch.count
    let p = layout.layers[l]
    func w(_ t: TensorPair) -> UnsafeMutablePointer<Float> { params + t.weight }
    func b(_ t: TensorPair) -> UnsafeMutablePointer<Float> { params + t.bias }
    let x = ws.x[l].p
    // R rows after K and V: their inputs xq, the output, and their offsets for the row dropout
    let (R, xq, out, rowOffsets) = queryRows(l, batch, ws: ws, rows: rows)
    func dropout(_ p: Float, _ site: DropoutSite) -> RowDropout {
      RowDropout(offsets: rowOffsets, exampleIds: batch.exampleIds, p: p, base: key(site, l))
    }
    // q [R,H] = xq · Wqᵀ + bq;  k, v [N,H] = x · Wᵀ + b
    Ops.linearForward(ws.q[l].p, xq, w(p.query), b(p.query), n: R, i: H, o: H)
    Ops.linearForward(ws.k[l].p, x, w(p.key), b(p.key), n: N, i: H, o: H)
    Ops.linearForward(ws.v[l].p, x, w(p.value), b(p.value), n: N, i: H, o: H)
    // LoRA: out += (alpha/R) · (dropout(inp) · Aᵀ) · Bᵀ on the targeted linears (none: no-ops)
    func lora(_ t: TensorPair, _ inp: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, rows n: Int, offsets: [Int], i: Int, o: Int) {
      guard let pair = layout.loraPair(t) else { return }
      loraForward(pair, inp, out, n: n, i: i, o: o, ws: ws,
                  dropout: RowDropout(offsets: offsets, exampleIds: batch.exampleIds, p: pl, base: loraKey(key(.lora, l), pair)))
    }
    lora(p.query, xq, ws.q[l].p, rows: R, offsets: rowOffsets, i: H, o: H)
    lora(p.key, x, ws.k[l].p, rows: N, offsets: batch.offsets, i: H, o: H)
    lora(p.value, x, ws.v[l].p, rows: N, offsets: batch.offsets, i: H, o: H)
    // ctx [R,H] = softmax(q kᵀ/√d) v, per sequence and head
    let packing = ws.attention(batch, dropout: pa, base: key(.attentionProbs, l))
    switch rows {
    case .all: Attention.forward(ctx: ws.ctx[l].p, probs: ws.probs[l].p, q: ws.q[l].p, k: ws.k[l].p, v: ws.v[l].p, packing)
    case .cls: Attention.forwardCLS(ctx: ws.ctx[l].p, probs: ws.probs[l].p, q: ws.q[l].p, k: ws.k[l].p, v: ws.v[l].p, packing)
    }
    // y1 [R,H] = LN1(dropout(ctx · Waᵀ + ba) + xq)
    let r1 = ws.dtmp.p
    Ops.linearForward(r1, ws.ctx[l].p, w(p.attnOut), b(p.attnOut), n: R, i: H, o: H)
    lora(p.attnOut, ws.ctx[l].p, r1, rows: R, offsets: rowOffsets, i: H, o: H)
    Ops.residualLayerNormForward(ws.y1[l].p, xhat: ws.xhat1[l].p, rstd: ws.rstd1[l].p, r1, residual: xq,
                                 gamma: w(p.lnAttn), beta: b(p.lnAttn), c: H, eps: dims.layerNormEps,
                                 dropout: dropout(dims.family.dropsAttentionOutput ? ph : 0, .attentionOutput))
    // u [R,I] = y1 · Wiᵀ + bi ;  g = gelu(u)  (u becomes GELU's slope when a backward follows)
    Ops.linearForward(ws.u[l].p, ws.y1[l].p, w(p.intermediate), b(p.intermediate), n: R, i: H, o: I)
    lora(p.intermediate, ws.y1[l].p, ws.u[l].p, rows: R, offsets: rowOffsets, i: H, o: I)
    Ops.geluForward(ws.g[l].p, ws.u[l].p, count: R * I, slope: storeSlope ? ws.u[l].p : nil)
    // out [R,H] = LN2(dropout(g · Woᵀ + bo) + y1)
    let r2 = ws.dtmp.p
    Ops.linearForward(r2, ws.g[l].p, w(p.output), b(p.output), n: R, i: I, o: H)
    lora(p.output, ws.g[l].p, r2, rows: R, offsets: rowOffsets, i: I, o: H)
    Ops.residualLayerNormForward(out, xhat: ws.xhat2[l].p, rstd: ws.rstd2[l].p, r2, residual: ws.y1[l].p,
                                 gamma: w(p.lnOut), beta: b(p.lnOut), c: H, eps: dims.layerNormEps,
                                 dropout: dropout(ph, .ffnOutput))
  }

  /// The R rows layer l computes after K and V (`QueryRows`): their count, their inputs (the [CLS]
  /// rows gathered into `ws.clsIn`), where the layer's output goes, and the offsets the row dropout
  /// reads. One definition for the fp32 and the bf16 layer.
  func queryRows(_ l: Int, _ batch: Batch, ws: Workspace, rows: QueryRows)
    -> (count: Int, input: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>, offsets: [Int]) {
    let H = dims.hidden, x = ws.x[l].p
    switch rows {
    case .all: return (batch.tokens, x, ws.x[l + 1].p, batch.offsets)
    case .cls:
      for bi in 0..<batch.count { (ws.clsIn.p + bi * H).update(from: x + batch.offsets[bi] * H, count: H) }
      return (batch.count, ws.clsIn.p, ws.cls.p, ws.clsOffsets)
    }
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


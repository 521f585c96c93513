import PETLKernels
import Synchronization

/// A buffer the workspace owns. `Workspace.bytes` counts every one of its members of a conforming
/// type (or arrays of them), so a new kind of buffer conforms here instead of joining a list.
protocol WorkspaceBuffer: AnyObject {
  var byteCount: Int { get }
}

/// Bytes held by all live workspace buffers of the process, counted by the buffers as they are
/// allocated and freed: an account kept apart from `Workspace.bytes`, which the tests check against it.
enum BufferAccount {
  static let liveBytes = Atomic<Int>(0)
}

/// An owned buffer (fp32 activations and gradients, or `Precision.bf16`'s product operands); freed
/// with its owner and counted in `BufferAccount`. The workspace allocates all of them once per shape
/// capacity, so a training step allocates nothing.
final class OwnedBuffer<Element: Numeric>: WorkspaceBuffer {
  let p: UnsafeMutablePointer<Element>
  let count: Int
  var byteCount: Int { count * MemoryLayout<Element>.stride }

  init(_ count: Int) {
    self.count = max(count, 1)
    p = .allocate(capacity: self.count)
    p.initialize(repeating: .zero, count: self.count)
    BufferAccount.liveBytes.add(byteCount, ordering: .relaxed)
  }
  deinit {
    BufferAccount.liveBytes.subtract(byteCount, ordering: .relaxed)
    p.deallocate()
  }
}

typealias FloatBuffer = OwnedBuffer<Float>
typealias BF16Buffer = OwnedBuffer<BF16>

/// Activations kept for the backward pass, and gradient scratch, sized for a maximum batch shape.
/// Layer l's input is `x[l]`; `x[layers]` is the encoder output.
public final class Workspace {
  public let dims: ModelDims
  public private(set) var maxTokens = 0
  public private(set) var maxBatch = 0
  public private(set) var maxLen = 0
  private(set) var maxProbs = 0
  private var scratchWorkers = 0
  /// Layers below this one keep no activations for backward: their per-layer buffers are one shared
  /// set, overwritten layer by layer (see `storeActivations(from:)`).
  public private(set) var firstStoredLayer = 0

  // forward
  var x: [FloatBuffer] = []
  var xhat0 = FloatBuffer(0), rstd0 = FloatBuffer(0)
  var q: [FloatBuffer] = [], k: [FloatBuffer] = [], v: [FloatBuffer] = []
  var probs: [FloatBuffer] = []
  var ctx: [FloatBuffer] = []
  var xhat1: [FloatBuffer] = [], rstd1: [FloatBuffer] = [], y1: [FloatBuffer] = []
  var u: [FloatBuffer] = [], g: [FloatBuffer] = []
  var xhat2: [FloatBuffer] = [], rstd2: [FloatBuffer] = []
  /// When the last layer ran for the [CLS] rows only (`QueryRows.cls`): its [CLS] input rows [B,H];
  /// that layer's q, ctx, y1, u, g and LayerNorm buffers then hold B compact rows, and its output is
  /// in `cls`.
  var clsIn = FloatBuffer(0)
  /// [0, 1, ..., B]: the [CLS] rows as one-token sequences (dropout counters t = 0).
  var clsOffsets: [Int] = [0]
  var cls = FloatBuffer(0), pooled = FloatBuffer(0), pooledDrop = FloatBuffer(0)
  /// The head dense layer's dropped input (RoBERTa, ELECTRA) and its GELU slope (ELECTRA), [B,H].
  var clsDrop = FloatBuffer(0), headSlope = FloatBuffer(0)
  /// ELECTRA's embeddings before `embeddings_project` [N,E] (the projection's input).
  var embedded = FloatBuffer(0)
  /// RoBERTa's position ids of the batch the last forward embedded, one per packed row (see
  /// `positionIds(for:)`); the backward's scatter into the position table reads them.
  private var positions: [Int32] = []
  var logits = FloatBuffer(0)
  // backward
  var dx = FloatBuffer(0), dxIn = FloatBuffer(0), dr = FloatBuffer(0), dtmp = FloatBuffer(0)
  var dy1 = FloatBuffer(0), dI = FloatBuffer(0)
  var dq = FloatBuffer(0), dk = FloatBuffer(0), dv = FloatBuffer(0), dctx = FloatBuffer(0)
  var dcls = FloatBuffer(0), dpooled = FloatBuffer(0), dlogits = FloatBuffer(0)
  var attnScratch = FloatBuffer(0)
  var gradScratchW = FloatBuffer(0), gradScratchB = FloatBuffer(0)
  // bf16 (precision bf16 only). Per layer, what only bf16 products read, stored rounded (their fp32
  // buffers above then hold nothing: q, k, v, ctx, g; y1 is one buffer shared by the layers): q, k,
  // v [N,H], ctx [R,H], y1 [R,H] (also kept fp32 for LN2's residual), g [R,I].
  var qb: [BF16Buffer] = [], kb: [BF16Buffer] = [], vb: [BF16Buffer] = []
  var ctxb: [BF16Buffer] = [], y1b: [BF16Buffer] = [], gb: [BF16Buffer] = []
  // Operands rounded just before a product reads them: an activation [N, max(H,I,E)], an output
  // gradient [N, max(H,I)], dctx [N,H]; attention's per-worker bf16 scratch.
  var bfIn = BF16Buffer(0), bfOut = BF16Buffer(0), dctxb = BF16Buffer(0)
  var attnScratchBF16 = BF16Buffer(0)
  // LoRA (`LoRAPass`): t = dropout(x) · Aᵀ and its gradient [N,R], the dropped input [N, max(H,I)]
  // (dropout on only); one set, reused by every adapter in turn.
  var loraT = FloatBuffer(0), loraDT = FloatBuffer(0), loraIn = FloatBuffer(0)
  // LoRA in bf16 (`LoRAPassBF16`): t and dt rounded [N,R], the dropped input rounded [N, max(H,I)].
  var loraTb = BF16Buffer(0), loraDTb = BF16Buffer(0), loraInb = BF16Buffer(0)
  /// The adapters the buffers are sized for (`use(lora:)`).
  private var loraShape: (rank: Int, dropout: Bool) = (0, false)
  /// The precision the buffers are sized for (bf16 adds the ones above and widens attention's scratch).
  public private(set) var precision: Precision

  /// Buffers for a model of `dims` in `precision` with `lora`'s adapters (a forward sets its model's
  /// anyway; given here, the first `reserve` already sizes them, and pointers taken after it stay valid).
  public init(dims: ModelDims, precision: Precision = .fp32, lora: LoRASpec? = nil) {
    self.dims = dims; self.precision = precision
    loraShape = (lora?.rank ?? 0, (lora?.dropout ?? 0) > 0)
  }

  /// Sizes the buffers for `p` at the next `reserve` (a forward sets its model's precision; set it
  /// before the first `reserve` so that the steps allocate nothing).
  public func use(_ p: Precision) {
    guard p != precision else { return }
    precision = p
    maxTokens = 0; maxBatch = 0; maxLen = 0; maxProbs = 0  // force the next reserve to rebuild
  }

  /// Sizes the LoRA buffers for `lora`'s adapters at the next `reserve` (a forward sets its model's).
  public func use(lora: LoRASpec?) {
    let shape = (lora?.rank ?? 0, (lora?.dropout ?? 0) > 0)
    guard shape != loraShape else { return }
    loraShape = shape
    maxTokens = 0; maxBatch = 0; maxLen = 0; maxProbs = 0  // force the next reserve to rebuild
  }

  /// The hidden states entering layer `l` ([tokens, hidden], packed), `l` in 0...layers: written by
  /// a forward, or by the caller before `forward(..., startLayer: l)` (frozen-prefix cache).
  public func layerInput(_ l: Int, tokens: Int) -> UnsafeMutableBufferPointer<Float> {
    precondition(tokens <= maxTokens, "layerInput: reserve the workspace first")
    return UnsafeMutableBufferPointer(start: x[l].p, count: tokens * dims.hidden)
  }

  /// The head's input on `from`, [batch, hidden]: the last layer's [CLS] rows (`.cls`) or the
  /// pooler's output (`.pooled`). Written by a forward, or by the caller before
  /// `head(..., from:)` (the head-only cell's cache).
  public func headInput(_ from: EncoderModel.HeadInput, batch: Int) -> UnsafeMutableBufferPointer<Float> {
    precondition(batch <= maxBatch, "headInput: reserve the workspace first")
    return UnsafeMutableBufferPointer(start: from == .cls ? cls.p : pooled.p, count: batch * dims.hidden)
  }

  /// The position ids the last forward's embeddings used: RoBERTa's (`positionIds(for:)`), nil for
  /// the other families. A backward into the embeddings follows a forward that started at them
  /// (checked), so these are its batch's.
  var embeddedPositionIds: [Int32]? { dims.family == .roberta ? positions : nil }

  /// Computes RoBERTa's position ids for `batch` (transformers' `create_position_ids_from_input_ids`:
  /// a token's position is padding_idx + the number of non-padding tokens up to it, a padding
  /// token's is padding_idx); nil for the other families, whose token t has position t.
  func positionIds(for batch: Batch) -> [Int32]? {
    guard dims.family == .roberta else { return nil }
    let pad = Int32(dims.padTokenId)
    positions.removeAll(keepingCapacity: true)
    for b in 0..<batch.count {
      var seen: Int32 = 0
      for r in batch.offsets[b]..<batch.offsets[b + 1] {
        if batch.inputIds[r] == pad { positions.append(pad) } else { seen += 1; positions.append(pad + seen) }
      }
    }
    return positions
  }

  /// Keep backward activations only for layers >= `layer` (a training step whose lowest trainable
  /// layer is `layer` never reads the ones below): the layers below share one set of buffers, so
  /// memory shrinks by one layer's activations per unstored layer (`bench` prints each row's memory,
  /// docs/performance.md has figures). Call before `reserve`
  /// (a change reallocates on the next `reserve`). Backward checks the gradient plan against it.
  public func storeActivations(from layer: Int) {
    let l = min(max(layer, 0), dims.layers - 1)
    guard l != firstStoredLayer else { return }
    firstStoredLayer = l
    maxTokens = 0; maxBatch = 0; maxLen = 0; maxProbs = 0  // force the next reserve to rebuild
  }

  /// Grows the buffers to hold `batch` (no-op when it already fits). Call it with the largest batch
  /// shape before training so the steps themselves never allocate.
  public func reserve(tokens: Int, batch: Int, maxLength: Int) {
    let probsNeeded = dims.heads * batch * maxLength * maxLength
    guard tokens > maxTokens || batch > maxBatch || maxLength > maxLen || probsNeeded > maxProbs
      || Parallel.maxWorkers > scratchWorkers else { return }
    scratchWorkers = Parallel.maxWorkers
    maxTokens = max(tokens, maxTokens); maxBatch = max(batch, maxBatch)
    maxLen = max(maxLength, maxLen); maxProbs = max(probsNeeded, maxProbs)
    let N = maxTokens, H = dims.hidden, I = dims.intermediate, L = dims.layers, B = maxBatch
    let E = dims.embedding, HE = max(H, E)
    // Per-layer buffers: layers below firstStoredLayer all use the first one (shared scratch).
    let f = firstStoredLayer
    func many(_ n: Int, _ c: Int) -> [FloatBuffer] {
      guard n == L, f > 0 else { return (0..<n).map { _ in FloatBuffer(c) } }
      let shared = FloatBuffer(c)
      return (0..<n).map { $0 < f ? shared : FloatBuffer(c) }
    }
    let bf16 = precision == .bf16
    x = (0..<(L + 1)).map { _ in FloatBuffer(N * H) }
    xhat0 = FloatBuffer(N * E); rstd0 = FloatBuffer(N)
    embedded = FloatBuffer(dims.projectsEmbeddings ? N * E : 0)
    positions.reserveCapacity(N)
    q = many(L, bf16 ? 0 : N * H); k = many(L, bf16 ? 0 : N * H); v = many(L, bf16 ? 0 : N * H)
    probs = many(L, maxProbs)
    ctx = many(L, bf16 ? 0 : N * H)
    xhat1 = many(L, N * H); rstd1 = many(L, N)
    let sharedY1 = FloatBuffer(N * H)
    y1 = bf16 ? (0..<L).map { _ in sharedY1 } : many(L, N * H)
    u = many(L, N * I); g = many(L, bf16 ? 0 : N * I)
    xhat2 = many(L, N * H); rstd2 = many(L, N)
    func halves(_ c: Int) -> [BF16Buffer] {
      guard bf16 else { return [] }
      guard f > 0 else { return (0..<L).map { _ in BF16Buffer(c) } }
      let shared = BF16Buffer(c)
      return (0..<L).map { $0 < f ? shared : BF16Buffer(c) }
    }
    qb = halves(N * H); kb = halves(N * H); vb = halves(N * H)
    ctxb = halves(N * H); y1b = halves(N * H); gb = halves(N * I)
    clsIn = FloatBuffer(B * H)
    cls = FloatBuffer(B * H); pooled = FloatBuffer(B * H); pooledDrop = FloatBuffer(B * H)
    clsDrop = FloatBuffer(dims.family.dropsHeadInput ? B * H : 0)
    headSlope = FloatBuffer(dims.family.headActivation == .gelu ? B * H : 0)
    logits = FloatBuffer(B * dims.numLabels)
    dx = FloatBuffer(N * H); dxIn = FloatBuffer(N * H); dr = FloatBuffer(N * HE); dtmp = FloatBuffer(N * HE)
    dy1 = FloatBuffer(N * H); dI = FloatBuffer(N * I)
    dq = FloatBuffer(N * H); dk = FloatBuffer(N * H); dv = FloatBuffer(N * H); dctx = FloatBuffer(N * H)
    dcls = FloatBuffer(B * H); dpooled = FloatBuffer(B * H); dlogits = FloatBuffer(B * dims.numLabels)
    attnScratch = FloatBuffer(Parallel.maxWorkers * (bf16 ? Attention.scratchPerWorkerBF16(maxLen: maxLen, heads: dims.heads).floats
                                                          : Attention.scratchPerWorker(maxLen: maxLen)))
    let wide = max(H, I, E)
    bfIn = BF16Buffer(bf16 ? N * wide : 0); bfOut = BF16Buffer(bf16 ? N * max(H, I) : 0)
    dctxb = BF16Buffer(bf16 ? N * H : 0)
    loraT = FloatBuffer(N * loraShape.rank); loraDT = FloatBuffer(N * loraShape.rank)
    loraIn = FloatBuffer(loraShape.dropout ? N * max(H, I) : 0)
    loraTb = BF16Buffer(bf16 ? N * loraShape.rank : 0); loraDTb = BF16Buffer(bf16 ? N * loraShape.rank : 0)
    loraInb = BF16Buffer(bf16 && loraShape.dropout ? N * max(H, I) : 0)
    attnScratchBF16 = BF16Buffer(bf16 ? Parallel.maxWorkers * Attention.scratchPerWorkerBF16(maxLen: maxLen, heads: dims.heads).halves : 0)
  }

  /// Bytes of every buffer the workspace holds (shared buffers once): the activation memory of a
  /// cell, which `storeActivations(from:)` shrinks for cells that train only the top layers. Read
  /// from the stored properties themselves (every `WorkspaceBuffer` member, alone or in an array), so
  /// a buffer added to the workspace is counted without being listed here.
  public var bytes: Int {
    var seen = Set<ObjectIdentifier>(), total = 0
    func add(_ b: WorkspaceBuffer) { if seen.insert(ObjectIdentifier(b)).inserted { total += b.byteCount } }
    for child in Mirror(reflecting: self).children {
      if let b = child.value as? WorkspaceBuffer { add(b) } else if let list = child.value as? [WorkspaceBuffer] { list.forEach(add) }
    }
    return total
  }

  public func reserve(for batch: Batch) {
    reserve(tokens: batch.tokens, batch: batch.count, maxLength: batch.maxLength)
  }

  /// The attention calls' view of `batch` in this workspace (its scratch and longest sequence).
  func attention(_ batch: Batch, dropout: Float, base: UInt64) -> Attention.Packing {
    Attention.Packing(offsets: batch.offsets, exampleIds: batch.exampleIds, hidden: dims.hidden, heads: dims.heads,
                      dropout: dropout, dropoutBase: base, scratch: attnScratch.p, maxLen: maxLen,
                      scratchBF16: precision == .bf16 ? attnScratchBF16.p : nil)
  }

  /// Scratch for tensors that train only in part (the `random` control), allocated on first use.
  func partialScratch(_ count: Int) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
    if gradScratchW.count < count { gradScratchW = FloatBuffer(count); gradScratchB = FloatBuffer(count) }
    return (gradScratchW.p, gradScratchB.p)
  }

  /// Logits of the last forward pass, [batch, numLabels], in place.
  public func outputs(batch: Int) -> UnsafeBufferPointer<Float> {
    UnsafeBufferPointer(start: logits.p, count: batch * dims.numLabels)
  }
}

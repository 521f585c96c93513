import PETLModel

/// Frozen-prefix cache (`--prefix-cache`). In a cell whose lowest trainable layer is l, the
/// embeddings and layers 0..<l never change, so the hidden states entering layer l are a fixed
/// function of each example once dropout in those frozen layers is off. The cache keeps them per
/// example (packed rows, `len x hidden` floats) up to a memory bound; a batch whose examples are all
/// cached starts its forward pass at layer l, skipping the prefix. Semantics: with the cache on, the
/// frozen prefix ALWAYS runs without dropout (also on a cache miss and in the first epoch); layers
/// l and above keep their dropout.
///
/// The states depend only on the pretrained weights, the tokenized example and l, so cells of the
/// same task and lowest layer on one rank share one cache (StudyContext keeps them).
///
/// At l = the number of layers (a head-only cell: the encoder, and BERT's pooler, frozen) the cache
/// keeps what feeds the trainable head, `hidden` floats per example: BERT's pooled output, or the
/// other families' last-layer [CLS] row (their head's dense layer trains). The forward is then the
/// head alone (`EncoderModel.head`).
public final class PrefixCache {
  public let layer: Int
  public let hidden: Int
  /// Upper bound on cached floats; examples beyond it are recomputed each time (no eviction churn).
  public let limitFloats: Int
  private var rows: [UInt64: [Float]] = [:]
  public private(set) var storedFloats = 0
  public private(set) var hits = 0
  public private(set) var misses = 0

  public init(layer: Int, hidden: Int, limitBytes: Int = 1 << 30) {
    precondition(layer > 0, "a prefix cache needs a frozen prefix")
    self.layer = layer; self.hidden = hidden; self.limitFloats = limitBytes / 4
  }

  /// Fills `ws.layerInput(layer)` for `batch`: from the cache when every example is there, else by
  /// one eval pass through the prefix (whose rows are then cached while the bound allows). The
  /// forward pass then starts at `layer`.
  func prepare(_ batch: Batch, model: EncoderModel, ws: Workspace) {
    // sized for the model's adapters first: the forward below must not rebuild the buffers under `x`
    ws.use(lora: model.layout.lora)
    ws.reserve(for: batch)
    if layer == model.dims.layers { return prepareHead(batch, model: model, ws: ws) }
    let x = ws.layerInput(layer, tokens: batch.tokens)
    let allCached = batch.exampleIds.allSatisfy { rows[$0] != nil }
    if !allCached {
      // One eval pass through the prefix computes x[layer] for the whole batch.
      model.forward(batch, ws: ws, training: false, depth: .encoder, endLayer: layer, forBackward: false)
      misses += 1
      for b in 0..<batch.count where rows[batch.exampleIds[b]] == nil {
        let o = batch.offsets[b] * hidden, n = (batch.offsets[b + 1] - batch.offsets[b]) * hidden
        guard storedFloats + n <= limitFloats else { continue }
        rows[batch.exampleIds[b]] = Array(x[o..<(o + n)])
        storedFloats += n
      }
      return
    }
    hits += 1
    for b in 0..<batch.count {
      let o = batch.offsets[b] * hidden
      rows[batch.exampleIds[b]]!.withUnsafeBufferPointer { src in
        (x.baseAddress! + o).update(from: src.baseAddress!, count: src.count)
      }
    }
  }

  /// The head-only case: fills the head's input [B,H], from the cache or by one eval forward.
  private func prepareHead(_ batch: Batch, model: EncoderModel, ws: Workspace) {
    let pooled = ws.headInput(model.headOnlyInput, batch: batch.count)
    if !batch.exampleIds.allSatisfy({ rows[$0] != nil }) {
      model.forward(batch, ws: ws, training: false, forBackward: false)
      misses += 1
      for b in 0..<batch.count where rows[batch.exampleIds[b]] == nil && storedFloats + hidden <= limitFloats {
        rows[batch.exampleIds[b]] = Array(pooled[(b * hidden)..<((b + 1) * hidden)])
        storedFloats += hidden
      }
      return
    }
    hits += 1
    for b in 0..<batch.count {
      rows[batch.exampleIds[b]]!.withUnsafeBufferPointer { (pooled.baseAddress! + b * hidden).update(from: $0.baseAddress!, count: hidden) }
    }
  }

  /// Runs the forward of `batch` from the cached layer: the remaining layers, or just the classifier.
  @discardableResult
  func forward(_ batch: Batch, model: EncoderModel, ws: Workspace, training: Bool, dropoutKey: UInt64 = 0,
               forBackward: Bool = true) -> ForwardPass {
    prepare(batch, model: model, ws: ws)
    if layer == model.dims.layers {
      return model.head(batch, ws: ws, training: training, dropoutKey: dropoutKey, from: model.headOnlyInput,
                        forBackward: forBackward)
    }
    return model.forward(batch, ws: ws, training: training, dropoutKey: dropoutKey, startLayer: layer, forBackward: forBackward)
  }
}

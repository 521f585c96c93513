import Foundation
import PETLSupport

extension ModelDims {
  public init(config c: EncoderConfig, numLabels: Int) {
    self.init(family: c.family, vocabSize: c.vocabSize, hidden: c.hiddenSize, layers: c.numHiddenLayers,
              heads: c.numAttentionHeads, intermediate: c.intermediateSize, maxPositions: c.maxPositionEmbeddings,
              typeVocab: c.typeVocabSize, numLabels: numLabels, layerNormEps: Float(c.layerNormEps),
              embedding: c.embeddingSize, padTokenId: c.padTokenId)
  }
}

extension EncoderModel {
  /// What `load` had to initialise because the checkpoint did not hold it (pooler, classifier), and
  /// the checkpoint's load summary.
  public struct LoadReport: Sendable {
    public var initialized: [String] = []
    public var seed: UInt64 = 0
    /// Set when the checkpoint has a classifier, for another label count than the task's.
    public var headMismatch: String? = nil
    /// `CheckpointPlan.summary`: tensors not used and parameters missing, counted and grouped, for
    /// the caller to print once (nil when the file holds exactly the model).
    public var summary: String? = nil
    /// One line for the user, or nil when everything came from the checkpoint.
    public var message: String? {
      guard !initialized.isEmpty else { return nil }
      var why = "not in checkpoint"
      if let h = headMismatch { why = initialized == ["classifier"] ? h : why + "; " + h }
      return "initialised \(initialized.joined(separator: ", ")) (\(why)): N(0, 0.02), seed \(seed)"
    }
  }

  /// Loads a HuggingFace encoder folder (`config.json`, `model.safetensors`; the family from
  /// `model_type`) with a head of `numLabels` outputs (1 = regression). Tensor names may carry the
  /// family's prefix (`bert.`, `roberta.`, `electra.`, `distilbert.`) or not, and LayerNorm
  /// parameters may use the old `gamma`/`beta` names; other tensors (`embeddings.position_ids`,
  /// pre-training heads: `cls.*`, `lm_head.*`, `discriminator_predictions.*`, `vocab_*`) are not
  /// used and are listed in the report's summary. A missing pooler or classification head (or one
  /// with another label count) is initialised from `seed` and reported; any other missing tensor,
  /// a wrong shape or a layer past the config's is an error, found before the slab is allocated
  /// (`CheckpointPlan`). `config`: the folder's `config.json` when the caller has read it already.
  public static func load(directory: URL, config known: EncoderConfig? = nil, numLabels: Int,
                          seed: UInt64 = 0) throws -> (EncoderModel, LoadReport) {
    let config = try known ?? EncoderConfig.load(directory.appendingPathComponent("config.json"))
    let plan = try CheckpointPlan(directory: directory, config: config, dims: ModelDims(config: config, numLabels: numLabels))
    let model = EncoderModel(layout: plan.layout,
                             hiddenDropout: Float(config.hiddenDropoutProb),
                             attentionDropout: Float(config.attentionProbsDropoutProb),
                             classifierDropout: config.classifierDropout.map(Float.init))
    var fresh: [ParameterSlot] = []
    for (slot, source) in zip(plan.layout.slots, plan.sources) {
      guard let source else { fresh.append(slot); continue }
      try plan.tensors.copyFloats(source, into: UnsafeMutableBufferPointer(start: model.pointer(slot), count: slot.count))
    }
    if !fresh.isEmpty { model.initialize(slots: fresh, seed: seed) }
    let report = LoadReport(initialized: plan.initialized, seed: seed, headMismatch: plan.headMismatch, summary: plan.summary)
    return (model, report)
  }
}

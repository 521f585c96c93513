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
  /// What `load` had to initialise because the checkpoint did not hold it (pooler, classifier).
  public struct LoadReport: Sendable {
    public var initialized: [String] = []
    public var seed: UInt64 = 0
    /// Set when the checkpoint has a classifier, for another label count than the task's.
    public var headMismatch: String? = nil
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
  /// parameters may use the old `gamma`/`beta` names; unused tensors (`embeddings.position_ids`,
  /// pre-training heads: `cls.*`, `lm_head.*`, `discriminator_predictions.*`, `vocab_*`) are ignored.
  /// A missing pooler or classification head (or one with another label count) is initialised from
  /// `seed` and reported; any other missing tensor or a wrong shape is an error.
  /// `config`: the folder's `config.json` when the caller has read it already.
  public static func load(directory: URL, config known: EncoderConfig? = nil, numLabels: Int,
                          seed: UInt64 = 0) throws -> (EncoderModel, LoadReport) {
    let config = try known ?? EncoderConfig.load(directory.appendingPathComponent("config.json"))
    let model = EncoderModel(dims: ModelDims(config: config, numLabels: numLabels),
                          hiddenDropout: Float(config.hiddenDropoutProb),
                          attentionDropout: Float(config.attentionProbsDropoutProb),
                          classifierDropout: config.classifierDropout.map(Float.init))
    let file = directory.appendingPathComponent("model.safetensors")
    guard FileManager.default.fileExists(atPath: file.path) else {
      throw PETLError("\(file.path): no such file (a HuggingFace model folder needs model.safetensors)")
    }
    let st = try SafeTensors.open(file)
    let available = Set(st.names)
    let prefix = config.family.checkpointPrefix
    func find(_ name: String) -> String? {
      var candidates = [name, prefix + name]
      if name.hasSuffix("LayerNorm.weight") { candidates += candidates.map { $0.replacingOccurrences(of: "LayerNorm.weight", with: "LayerNorm.gamma") } }
      if name.hasSuffix("LayerNorm.bias") { candidates += candidates.map { $0.replacingOccurrences(of: "LayerNorm.bias", with: "LayerNorm.beta") } }
      return candidates.first(where: available.contains)
    }
    var report = LoadReport(seed: seed)
    var fresh: [ParameterSlot] = []
    for slot in model.layout.slots {
      guard let stored = find(slot.name), let info = st.info(stored) else {
        if slot.module == .pooler || slot.module == .classifier { fresh.append(slot); continue }
        throw PETLError("\(file.path): tensor '\(slot.name)' (or '\(prefix)\(slot.name)') is missing for model_type \(config.family.rawValue)")
      }
      guard info.shape == slot.shape else {
        if slot.module == .classifier {  // a head for another label count
          if report.headMismatch == nil {
            report.headMismatch = "the checkpoint's \(stored) is \(info.shape), this task's head \(slot.shape)"
          }
          fresh.append(slot); continue
        }
        throw PETLError("\(file.path): tensor '\(stored)' has shape \(info.shape), config.json implies \(slot.shape)")
      }
      try st.copyFloats(stored, into: UnsafeMutableBufferPointer(start: model.pointer(slot), count: slot.count))
    }
    // Never half a head: one mismatched classifier tensor makes the whole classifier fresh.
    if fresh.contains(where: { $0.module == .classifier }) {
      for s in model.layout.slots where s.module == .classifier && !fresh.contains(where: { $0.name == s.name }) { fresh.append(s) }
    }
    if !fresh.isEmpty {
      model.initialize(slots: fresh, seed: seed)
      var modules: [String] = []
      for s in fresh { let m = model.layout.modulePath(of: s); if !modules.contains(m) { modules.append(m) } }
      report.initialized = modules
    }
    return (model, report)
  }
}

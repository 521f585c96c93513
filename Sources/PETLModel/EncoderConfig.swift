import Foundation
import PETLSupport

/// The architecture fields of a HuggingFace encoder `config.json` (BERT, RoBERTa, ELECTRA or
/// DistilBERT, told apart by `model_type`) that the engine needs, under BERT's names (DistilBERT's
/// `dim`, `n_layers`, ... are read into them). Fields HF adds for other purposes (`architectures`,
/// `use_cache`, ...) are ignored. The memberwise init builds tiny random models in tests without a file.
public struct EncoderConfig: Sendable, Equatable {
  /// The feed-forward activation. Only the exact (erf) GELU that HF calls `"gelu"` is implemented;
  /// silently running `gelu_new` (tanh) as erf would shift every score, so other names are errors.
  public enum HiddenAct: String, Sendable { case gelu }

  public var family: EncoderFamily
  public var hiddenSize: Int
  public var numHiddenLayers: Int
  public var numAttentionHeads: Int
  public var intermediateSize: Int
  public var maxPositionEmbeddings: Int
  /// 0 when the family has no token-type table (DistilBERT).
  public var typeVocabSize: Int
  public var vocabSize: Int
  /// Width of the embedding tables: ELECTRA's `embedding_size`, projected to `hiddenSize` by
  /// `embeddings_project` when they differ; `hiddenSize` for the other families.
  public var embeddingSize: Int
  /// RoBERTa numbers positions from `padTokenId + 1` and gives padding tokens position `padTokenId`.
  public var padTokenId: Int
  public var layerNormEps: Double
  public var hiddenAct: HiddenAct
  public var hiddenDropoutProb: Double
  public var attentionProbsDropoutProb: Double
  /// Dropout before the classifier; HF falls back to `hiddenDropoutProb` when nil.
  public var classifierDropout: Double?

  public init(family: EncoderFamily = .bert, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
              intermediateSize: Int, maxPositionEmbeddings: Int, typeVocabSize: Int, vocabSize: Int,
              embeddingSize: Int? = nil, padTokenId: Int = 0, layerNormEps: Double,
              hiddenAct: HiddenAct = .gelu, hiddenDropoutProb: Double, attentionProbsDropoutProb: Double,
              classifierDropout: Double? = nil) {
    self.family = family
    self.hiddenSize = hiddenSize; self.numHiddenLayers = numHiddenLayers
    self.numAttentionHeads = numAttentionHeads; self.intermediateSize = intermediateSize
    self.maxPositionEmbeddings = maxPositionEmbeddings; self.typeVocabSize = typeVocabSize
    self.vocabSize = vocabSize; self.embeddingSize = embeddingSize ?? hiddenSize; self.padTokenId = padTokenId
    self.layerNormEps = layerNormEps; self.hiddenAct = hiddenAct
    self.hiddenDropoutProb = hiddenDropoutProb; self.attentionProbsDropoutProb = attentionProbsDropoutProb
    self.classifierDropout = classifierDropout
  }

  /// Width of one attention head.
  public var headDim: Int { hiddenSize / numAttentionHeads }

  /// Positions the position table has for tokens (`EncoderFamily.firstPosition`).
  public var maxTokens: Int { maxPositionEmbeddings - family.firstPosition(padTokenId: padTokenId) }

  /// Keys `config.json` left out, read as the transformers class's defaults (inspect says so).
  public var defaulted: [String] = []

  /// Reads `config.json` as transformers 5 reads it (`ConfigFields`), then refuses what the engine
  /// does not compute and any size this machine cannot hold, before anything is allocated.
  public static func load(_ url: URL) throws -> EncoderConfig {
    let path = url.path
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw PETLError("\(path): cannot read file (\(error.localizedDescription))")
    }
    var fields = try ConfigFields([UInt8](data), path: path)
    // A config without model_type is taken as BERT (early BERT configs did not write it).
    let typeName = try fields.optionalString("model_type") ?? "bert"
    guard let family = EncoderFamily(rawValue: typeName) else {
      throw PETLError("\(path): model_type '\(shown(typeName))' is not supported (supported: \(EncoderFamily.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    var config = family == .distilbert ? try distilBERT(&fields) : try bertLike(family, &fields)
    config.defaulted = fields.defaulted
    let names = family == .distilbert
      ? (hidden: "dim", heads: "n_heads", layers: "n_layers", intermediate: "hidden_dim")
      : (hidden: "hidden_size", heads: "num_attention_heads", layers: "num_hidden_layers", intermediate: "intermediate_size")
    let sizes: [(String, Int)] = [(names.hidden, config.hiddenSize), (names.layers, config.numHiddenLayers),
                                  (names.heads, config.numAttentionHeads), (names.intermediate, config.intermediateSize),
                                  ("max_position_embeddings", config.maxPositionEmbeddings), ("vocab_size", config.vocabSize)]
      + (family.hasTokenTypeTable ? [("type_vocab_size", config.typeVocabSize)] : [])
      + (family == .electra ? [("embedding_size", config.embeddingSize)] : [])
    for (key, value) in sizes where value <= 0 {
      throw PETLError("\(path): field '\(key)' must be positive, got \(value)")
    }
    guard config.hiddenSize % config.numAttentionHeads == 0 else {
      throw PETLError("\(path): \(names.hidden) \(config.hiddenSize) is not divisible by \(names.heads) \(config.numAttentionHeads)")
    }
    guard config.layerNormEps > 0, config.layerNormEps.isFinite else {
      throw PETLError("\(path): layer_norm_eps must be positive and finite, got \(config.layerNormEps)")
    }
    guard config.padTokenId >= 0, config.padTokenId < config.vocabSize else {
      throw PETLError("\(path): pad_token_id \(config.padTokenId) is outside the vocabulary of \(config.vocabSize)")
    }
    guard config.maxTokens >= 2 else {
      throw PETLError("\(path): max_position_embeddings \(config.maxPositionEmbeddings) leaves no positions for tokens")
    }
    // Every product of sizes the model will allocate, checked before anything is: the counts must
    // fit an Int and the parameters this machine's memory (the head's labels are checked at load).
    try ModelDims(config: config, numLabels: 1).checkFits(in: path)
    return config
  }

  /// BERT, RoBERTa and ELECTRA share BERT's config fields (ELECTRA adds `embedding_size`); absent
  /// fields take the transformers class's defaults.
  private static func bertLike(_ family: EncoderFamily, _ f: inout ConfigFields) throws -> EncoderConfig {
    let electra = family == .electra
    let pad = try f.optionalInt("pad_token_id", default: family == .roberta ? 1 : 0)
    // RoBERTa's positions count from pad_token_id + 1: without one transformers cannot build them.
    if pad == nil && family == .roberta { throw PETLError("\(f.path): pad_token_id is null; RoBERTa's position ids need it") }
    return EncoderConfig(
      family: family,
      hiddenSize: try f.int("hidden_size", default: electra ? 256 : 768),
      numHiddenLayers: try f.int("num_hidden_layers", default: 12),
      numAttentionHeads: try f.int("num_attention_heads", default: electra ? 4 : 12),
      intermediateSize: try f.int("intermediate_size", default: electra ? 1024 : 3072),
      maxPositionEmbeddings: try f.int("max_position_embeddings", default: 512),
      typeVocabSize: try f.int("type_vocab_size", default: 2),
      vocabSize: try f.int("vocab_size", default: family == .roberta ? 50265 : 30522),
      embeddingSize: electra ? try f.int("embedding_size", default: 128) : nil,
      padTokenId: pad ?? 0,
      layerNormEps: try f.float("layer_norm_eps", default: 1e-12),
      hiddenAct: try activation(&f, "hidden_act"),
      hiddenDropoutProb: try probability(&f, "hidden_dropout_prob"),
      attentionProbsDropoutProb: try probability(&f, "attention_probs_dropout_prob"),
      classifierDropout: try optionalProbability(&f, "classifier_dropout", default: nil))
  }

  /// DistilBERT's own field names; its LayerNorm epsilon is fixed at 1e-12 in transformers.
  private static func distilBERT(_ f: inout ConfigFields) throws -> EncoderConfig {
    if try f.bool("sinusoidal_pos_embds", default: false) {
      throw PETLError("\(f.path): sinusoidal_pos_embds true is not supported (fixed sinusoidal positions)")
    }
    return EncoderConfig(
      family: .distilbert,
      hiddenSize: try f.int("dim", default: 768),
      numHiddenLayers: try f.int("n_layers", default: 6),
      numAttentionHeads: try f.int("n_heads", default: 12),
      intermediateSize: try f.int("hidden_dim", default: 3072),
      maxPositionEmbeddings: try f.int("max_position_embeddings", default: 512),
      typeVocabSize: 0,
      vocabSize: try f.int("vocab_size", default: 30522),
      padTokenId: try f.optionalInt("pad_token_id", default: 0) ?? 0,
      layerNormEps: 1e-12,
      hiddenAct: try activation(&f, "activation"),
      hiddenDropoutProb: try probability(&f, "dropout"),
      attentionProbsDropoutProb: try probability(&f, "attention_dropout"),
      classifierDropout: try probability(&f, "seq_classif_dropout", default: 0.2))
  }

  private static func activation(_ f: inout ConfigFields, _ key: String) throws -> HiddenAct {
    let name = try f.string(key, default: "gelu")
    guard let act = HiddenAct(rawValue: name) else {
      throw PETLError("\(f.path): \(key) '\(shown(name))' is not supported (only 'gelu', the erf form)")
    }
    return act
  }

  /// A dropout probability (`float | int`, default 0.1), which must lie in [0, 1).
  private static func probability(_ f: inout ConfigFields, _ key: String, default d: Double = 0.1) throws -> Double {
    try checkedProbability(key, try f.number(key, default: d), f.path)
  }

  private static func optionalProbability(_ f: inout ConfigFields, _ key: String, default d: Double?) throws -> Double? {
    try f.optionalNumber(key, default: d).map { try checkedProbability(key, $0, f.path) }
  }

  private static func checkedProbability(_ key: String, _ v: Double, _ path: String) throws -> Double {
    guard v >= 0, v < 1 else { throw PETLError("\(path): field '\(key)' must be in [0, 1), got \(v)") }
    return v
  }
}

// MARK: - Inputs against the tables they index

/// The kernels read the word, position and token-type tables through raw pointers: an id past a table
/// is a silent out-of-bounds read, not a trap, in any build. So every path from user input to those
/// tables is checked here, at load or parse time, with one line naming the file or flag at fault.
extension EncoderConfig {
  /// Refuses a vocabulary whose ids run past the word-embedding table (`vocab_size` rows). A shorter
  /// vocabulary is fine: some checkpoints pad the table beyond the tokenizer's ids.
  public func checkVocabulary(tokens: Int, file: String) throws {
    guard tokens <= vocabSize else {
      throw PETLError("\(file): \(tokens) tokens but config.json vocab_size is \(vocabSize)")
    }
  }

  /// Refuses an encoding length (`--max-length`) the position table cannot hold, or one too short for
  /// the special tokens (`[CLS] a [SEP]`: 2, `[CLS] a [SEP] b [SEP]`: 3; RoBERTa's
  /// `<s> a </s></s> b </s>`: 4).
  public func checkMaxLength(_ maxLength: Int, pairs: Bool, configPath: String, flag: String = "--max-length") throws {
    let bpe = family.tokenizer == .byteLevelBPE
    let (minimum, specials) = switch (pairs, bpe) {
    case (false, false): (2, "[CLS] and [SEP]")
    case (true, false): (3, "[CLS] and two [SEP] (sentence pairs)")
    case (false, true): (2, "<s> and </s>")
    case (true, true): (4, "<s> and three </s> (sentence pairs)")
    }
    guard maxLength >= minimum else {
      throw PETLError("\(flag) \(maxLength): must be at least \(minimum) to hold \(specials)")
    }
    guard maxLength <= maxTokens else {
      let first = family.firstPosition(padTokenId: padTokenId)
      let offset = first > 0 ? ", positions start at pad_token_id + 1 = \(first)" : ""
      throw PETLError("\(flag) \(maxLength): the model has max_position_embeddings \(maxPositionEmbeddings)\(offset) (\(configPath))")
    }
  }

  /// Refuses sentence pairs (the second text has token type 1) on a model with one token type, in the
  /// families whose tokenizer sends segment ids (BERT, ELECTRA).
  public func checkTokenTypes(pairs: Bool, task: String, configPath: String) throws {
    guard !pairs || !family.usesSegmentIds || typeVocabSize >= 2 else {
      throw PETLError("task \(task) encodes sentence pairs (token type 1) but the model has type_vocab_size \(typeVocabSize) (\(configPath))")
    }
  }
}

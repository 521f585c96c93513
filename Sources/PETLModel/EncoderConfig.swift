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

  public static func load(_ url: URL) throws -> EncoderConfig {
    let path = url.path
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw PETLError("\(path): cannot read file (\(error.localizedDescription))")
    }
    let fields: ConfigFields
    do {
      fields = try JSONDecoder().decode(ConfigFields.self, from: data)
    } catch {
      throw PETLError("\(path): not a JSON object (\(oneLine(error)))")
    }
    // A config without model_type is taken as BERT (early BERT configs did not write it).
    let typeName = try fields.optionalString("model_type", path) ?? "bert"
    guard let family = EncoderFamily(rawValue: typeName) else {
      throw PETLError("\(path): model_type '\(typeName)' is not supported (supported: \(EncoderFamily.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    let config = family == .distilbert ? try distilBERT(fields, path) : try bertLike(family, fields, path)
    guard config.hiddenSize % config.numAttentionHeads == 0 else {
      let (h, n) = family == .distilbert ? ("dim", "n_heads") : ("hidden_size", "num_attention_heads")
      throw PETLError("\(path): \(h) \(config.hiddenSize) is not divisible by \(n) \(config.numAttentionHeads)")
    }
    guard config.layerNormEps > 0 else {
      throw PETLError("\(path): layer_norm_eps must be positive, got \(config.layerNormEps)")
    }
    guard config.padTokenId >= 0, config.padTokenId < config.vocabSize else {
      throw PETLError("\(path): pad_token_id \(config.padTokenId) is outside the vocabulary of \(config.vocabSize)")
    }
    guard config.maxTokens >= 2 else {
      throw PETLError("\(path): max_position_embeddings \(config.maxPositionEmbeddings) leaves no positions for tokens")
    }
    return config
  }

  private static func activation(_ fields: ConfigFields, _ key: String, _ path: String) throws -> HiddenAct {
    let name = try fields.string(key, path)
    guard let act = HiddenAct(rawValue: name) else {
      throw PETLError("\(path): \(key) '\(name)' is not supported (only 'gelu', the erf form)")
    }
    return act
  }

  /// BERT, RoBERTa and ELECTRA share BERT's config fields (ELECTRA adds `embedding_size`).
  private static func bertLike(_ family: EncoderFamily, _ fields: ConfigFields, _ path: String) throws -> EncoderConfig {
    let hidden = try fields.positive("hidden_size", path)
    return EncoderConfig(
      family: family,
      hiddenSize: hidden,
      numHiddenLayers: try fields.positive("num_hidden_layers", path),
      numAttentionHeads: try fields.positive("num_attention_heads", path),
      intermediateSize: try fields.positive("intermediate_size", path),
      maxPositionEmbeddings: try fields.positive("max_position_embeddings", path),
      typeVocabSize: try fields.positive("type_vocab_size", path),
      vocabSize: try fields.positive("vocab_size", path),
      embeddingSize: family == .electra ? try fields.optionalPositive("embedding_size", path) ?? hidden : hidden,
      padTokenId: try fields.optionalInteger("pad_token_id", path) ?? (family == .roberta ? 1 : 0),
      layerNormEps: try fields.number("layer_norm_eps", path),
      hiddenAct: try activation(fields, "hidden_act", path),
      hiddenDropoutProb: try fields.probability("hidden_dropout_prob", path),
      attentionProbsDropoutProb: try fields.probability("attention_probs_dropout_prob", path),
      classifierDropout: try fields.optionalProbability("classifier_dropout", path))
  }

  /// DistilBERT's own field names; its LayerNorm epsilon is fixed at 1e-12 in transformers.
  private static func distilBERT(_ fields: ConfigFields, _ path: String) throws -> EncoderConfig {
    if try fields.optionalBool("sinusoidal_pos_embds", path) == true {
      throw PETLError("\(path): sinusoidal_pos_embds true is not supported (fixed sinusoidal positions)")
    }
    return EncoderConfig(
      family: .distilbert,
      hiddenSize: try fields.positive("dim", path),
      numHiddenLayers: try fields.positive("n_layers", path),
      numAttentionHeads: try fields.positive("n_heads", path),
      intermediateSize: try fields.positive("hidden_dim", path),
      maxPositionEmbeddings: try fields.positive("max_position_embeddings", path),
      typeVocabSize: 0,
      vocabSize: try fields.positive("vocab_size", path),
      padTokenId: try fields.optionalInteger("pad_token_id", path) ?? 0,
      layerNormEps: 1e-12,
      hiddenAct: try activation(fields, "activation", path),
      hiddenDropoutProb: try fields.probability("dropout", path),
      attentionProbsDropoutProb: try fields.probability("attention_dropout", path),
      classifierDropout: try fields.optionalProbability("seq_classif_dropout", path))
  }
}

/// One JSON value of config.json, as far as the fields we read care.
private enum ConfigValue: Decodable {
  case null, bool(Bool), int(Int), double(Double), string(String), other

  init(from decoder: Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() { self = .null }
    else if let b = try? c.decode(Bool.self) { self = .bool(b) }
    else if let i = try? c.decode(Int.self) { self = .int(i) }
    else if let d = try? c.decode(Double.self) { self = .double(d) }
    else if let s = try? c.decode(String.self) { self = .string(s) }
    else { self = .other }
  }
}

/// A config.json object read field by field, so every missing or mistyped field gets its own message.
private struct ConfigFields: Decodable {
  let values: [String: ConfigValue]

  init(from decoder: Decoder) throws { values = try [String: ConfigValue](from: decoder) }

  /// nil when absent or null (HF writes `null` for unset optional fields).
  private func present(_ key: String) -> ConfigValue? {
    guard let v = values[key] else { return nil }
    if case .null = v { return nil }
    return v
  }

  private func required(_ key: String, _ path: String) throws -> ConfigValue {
    guard let v = present(key) else { throw PETLError("\(path): missing field '\(key)'") }
    return v
  }

  func string(_ key: String, _ path: String) throws -> String {
    guard case .string(let s) = try required(key, path) else { throw PETLError("\(path): field '\(key)' must be a string") }
    return s
  }

  func optionalString(_ key: String, _ path: String) throws -> String? {
    guard let v = present(key) else { return nil }
    guard case .string(let s) = v else { throw PETLError("\(path): field '\(key)' must be a string") }
    return s
  }

  func optionalBool(_ key: String, _ path: String) throws -> Bool? {
    guard let v = present(key) else { return nil }
    guard case .bool(let b) = v else { throw PETLError("\(path): field '\(key)' must be true or false") }
    return b
  }

  func optionalInteger(_ key: String, _ path: String) throws -> Int? {
    guard let v = present(key) else { return nil }
    guard case .int(let i) = v else { throw PETLError("\(path): field '\(key)' must be an integer") }
    return i
  }

  func optionalPositive(_ key: String, _ path: String) throws -> Int? {
    guard present(key) != nil else { return nil }
    return try positive(key, path)
  }

  func number(_ key: String, _ path: String) throws -> Double {
    try asNumber(key, try required(key, path), path)
  }

  func positive(_ key: String, _ path: String) throws -> Int {
    guard case .int(let v) = try required(key, path) else { throw PETLError("\(path): field '\(key)' must be an integer") }
    guard v > 0 else { throw PETLError("\(path): field '\(key)' must be positive, got \(v)") }
    return v
  }

  func probability(_ key: String, _ path: String) throws -> Double {
    try checkedProbability(key, try number(key, path), path)
  }

  func optionalProbability(_ key: String, _ path: String) throws -> Double? {
    guard let v = present(key) else { return nil }
    return try checkedProbability(key, try asNumber(key, v, path), path)
  }

  private func asNumber(_ key: String, _ v: ConfigValue, _ path: String) throws -> Double {
    switch v {
    case .int(let i): return Double(i)
    case .double(let d): return d
    default: throw PETLError("\(path): field '\(key)' must be a number")
    }
  }

  private func checkedProbability(_ key: String, _ v: Double, _ path: String) throws -> Double {
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

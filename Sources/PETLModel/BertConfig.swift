import Foundation
import PETLKernels

/// The architecture fields of a HuggingFace BERT `config.json` that the engine needs; property names
/// are the HF keys in camelCase. Fields HF adds for other purposes (`architectures`, `use_cache`, ...)
/// are ignored. The memberwise init builds tiny random models in tests without a file.
public struct BertConfig: Sendable, Equatable {
  /// The feed-forward activation. Only the exact (erf) GELU that HF calls `"gelu"` is implemented;
  /// silently running `gelu_new` (tanh) as erf would shift every score, so other names are errors.
  public enum HiddenAct: String, Sendable { case gelu }

  public var hiddenSize: Int
  public var numHiddenLayers: Int
  public var numAttentionHeads: Int
  public var intermediateSize: Int
  public var maxPositionEmbeddings: Int
  public var typeVocabSize: Int
  public var vocabSize: Int
  public var layerNormEps: Double
  public var hiddenAct: HiddenAct
  public var hiddenDropoutProb: Double
  public var attentionProbsDropoutProb: Double
  /// Dropout before the classifier; HF falls back to `hiddenDropoutProb` when nil.
  public var classifierDropout: Double?

  public init(hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, intermediateSize: Int,
              maxPositionEmbeddings: Int, typeVocabSize: Int, vocabSize: Int, layerNormEps: Double,
              hiddenAct: HiddenAct = .gelu, hiddenDropoutProb: Double, attentionProbsDropoutProb: Double,
              classifierDropout: Double? = nil) {
    self.hiddenSize = hiddenSize; self.numHiddenLayers = numHiddenLayers
    self.numAttentionHeads = numAttentionHeads; self.intermediateSize = intermediateSize
    self.maxPositionEmbeddings = maxPositionEmbeddings; self.typeVocabSize = typeVocabSize
    self.vocabSize = vocabSize; self.layerNormEps = layerNormEps; self.hiddenAct = hiddenAct
    self.hiddenDropoutProb = hiddenDropoutProb; self.attentionProbsDropoutProb = attentionProbsDropoutProb
    self.classifierDropout = classifierDropout
  }

  /// Width of one attention head.
  public var headDim: Int { hiddenSize / numAttentionHeads }

  public static func load(_ url: URL) throws -> BertConfig {
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
    let actName = try fields.string("hidden_act", path)
    guard let act = HiddenAct(rawValue: actName) else {
      throw PETLError("\(path): hidden_act '\(actName)' is not supported (only 'gelu', the erf form)")
    }
    let config = BertConfig(
      hiddenSize: try fields.positive("hidden_size", path),
      numHiddenLayers: try fields.positive("num_hidden_layers", path),
      numAttentionHeads: try fields.positive("num_attention_heads", path),
      intermediateSize: try fields.positive("intermediate_size", path),
      maxPositionEmbeddings: try fields.positive("max_position_embeddings", path),
      typeVocabSize: try fields.positive("type_vocab_size", path),
      vocabSize: try fields.positive("vocab_size", path),
      layerNormEps: try fields.number("layer_norm_eps", path),
      hiddenAct: act,
      hiddenDropoutProb: try fields.probability("hidden_dropout_prob", path),
      attentionProbsDropoutProb: try fields.probability("attention_probs_dropout_prob", path),
      classifierDropout: try fields.optionalProbability("classifier_dropout", path))
    guard config.hiddenSize % config.numAttentionHeads == 0 else {
      throw PETLError("\(path): hidden_size \(config.hiddenSize) is not divisible by num_attention_heads \(config.numAttentionHeads)")
    }
    guard config.layerNormEps > 0 else {
      throw PETLError("\(path): layer_norm_eps must be positive, got \(config.layerNormEps)")
    }
    return config
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
extension BertConfig {
  /// Refuses a vocabulary whose ids run past the word-embedding table (`vocab_size` rows). A shorter
  /// vocabulary is fine: some checkpoints pad the table beyond the tokenizer's ids.
  public func checkVocabulary(tokens: Int, file: String) throws {
    guard tokens <= vocabSize else {
      throw PETLError("\(file): \(tokens) tokens but config.json vocab_size is \(vocabSize)")
    }
  }

  /// Refuses an encoding length (`--max-length`) the position table cannot hold, or one too short for
  /// the special tokens (`[CLS] a [SEP]`: 2; `[CLS] a [SEP] b [SEP]`: 3).
  public func checkMaxLength(_ maxLength: Int, pairs: Bool, configPath: String, flag: String = "--max-length") throws {
    let minimum = pairs ? 3 : 2
    guard maxLength >= minimum else {
      throw PETLError("\(flag) \(maxLength): must be at least \(minimum) to hold [CLS] and \(pairs ? "two [SEP] (sentence pairs)" : "[SEP]")")
    }
    guard maxLength <= maxPositionEmbeddings else {
      throw PETLError("\(flag) \(maxLength): the model has max_position_embeddings \(maxPositionEmbeddings) (\(configPath))")
    }
  }

  /// Refuses sentence pairs (the second text has token type 1) on a model with one token type.
  public func checkTokenTypes(pairs: Bool, task: String, configPath: String) throws {
    guard !pairs || typeVocabSize >= 2 else {
      throw PETLError("task \(task) encodes sentence pairs (token type 1) but the model has type_vocab_size \(typeVocabSize) (\(configPath))")
    }
  }
}

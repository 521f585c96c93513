/// An encoder family as HuggingFace ships it: its `model_type`, the prefix its checkpoints put on the
/// base model's tensors, its tensor names for the study's module axis, its embeddings and its
/// sequence-classification head. Everything else (attention, FFN, LayerNorms, the slab) is shared:
/// the four families differ only in what this type describes.
public enum EncoderFamily: String, CaseIterable, Sendable, Codable {
  case bert, roberta, electra, distilbert

  /// The prefix of the base model's tensors in a checkpoint with a task or pre-training head
  /// (`bert.encoder...`, `roberta.encoder...`); a bare base model has none.
  public var checkpointPrefix: String { rawValue + "." }

  /// transformers' class for sequence classification on this family (what an export names).
  public var sequenceClassificationClass: String {
    switch self {
    case .bert: return "BertForSequenceClassification"
    case .roberta: return "RobertaForSequenceClassification"
    case .electra: return "ElectraForSequenceClassification"
    case .distilbert: return "DistilBertForSequenceClassification"
    }
  }

  /// The tokenizer the family's hub folders ship: WordPiece (`vocab.txt`) or byte-level BPE
  /// (`vocab.json` + `merges.txt`).
  public enum TokenizerKind: Sendable { case wordPiece, byteLevelBPE }
  public var tokenizer: TokenizerKind { self == .roberta ? .byteLevelBPE : .wordPiece }

  /// Whether token type ids index an embedding table. RoBERTa has a table but its tokenizer sends
  /// type 0 for both segments; DistilBERT has no table at all.
  public var hasTokenTypeTable: Bool { self != .distilbert }
  /// Whether the tokenizer's second segment gets token type 1 (BERT's segment embeddings).
  public var usesSegmentIds: Bool { self == .bert || self == .electra }

  /// The position-table row of a sequence's first token: RoBERTa numbers positions from
  /// `padTokenId + 1` (its padding tokens take row `padTokenId`), the others from 0.
  public func firstPosition(padTokenId: Int) -> Int { self == .roberta ? padTokenId + 1 : 0 }

  /// BERT's pooler (dense + tanh on [CLS]) is part of the pretrained base model; the other families'
  /// head dense layer is part of the (freshly initialised, always trained) classification head.
  public var hasPooler: Bool { self == .bert }

  /// DistilBERT applies no dropout to the attention output projection (its FFN output keeps it).
  public var dropsAttentionOutput: Bool { self != .distilbert }

  /// Activation after the head's dense layer (BERT's pooler: tanh).
  public var headActivation: Activation {
    switch self {
    case .bert, .roberta: return .tanh
    case .electra: return .gelu
    case .distilbert: return .relu
    }
  }

  /// RoBERTa and ELECTRA heads apply the classifier dropout to [CLS] before the dense layer too.
  public var dropsHeadInput: Bool { self == .roberta || self == .electra }

  public enum Activation: String, Sendable { case tanh, gelu, relu }

  /// The module path (without `.weight` / `.bias`) of a per-layer module kind in layer `l`, as the
  /// family's base model names it.
  public func path(_ kind: ModuleKind, layer l: Int) -> String {
    switch self {
    case .bert, .roberta, .electra:
      let p = "encoder.layer.\(l)."
      switch kind {
      case .query: return p + "attention.self.query"
      case .key: return p + "attention.self.key"
      case .value: return p + "attention.self.value"
      case .attnOut: return p + "attention.output.dense"
      case .intermediate: return p + "intermediate.dense"
      case .output: return p + "output.dense"
      case .lnAttn: return p + "attention.output.LayerNorm"
      case .lnOut: return p + "output.LayerNorm"
      case .embeddings, .pooler, .classifier: preconditionFailure("\(kind) is not a per-layer module")
      }
    case .distilbert:
      let p = "transformer.layer.\(l)."
      switch kind {
      case .query: return p + "attention.q_lin"
      case .key: return p + "attention.k_lin"
      case .value: return p + "attention.v_lin"
      case .attnOut: return p + "attention.out_lin"
      case .intermediate: return p + "ffn.lin1"
      case .output: return p + "ffn.lin2"
      case .lnAttn: return p + "sa_layer_norm"
      case .lnOut: return p + "output_layer_norm"
      case .embeddings, .pooler, .classifier: preconditionFailure("\(kind) is not a per-layer module")
      }
    }
  }

  /// The head's dense layer (BERT: the pooler, in the base model) and its output projection, as the
  /// family's `*ForSequenceClassification` names them.
  public var headPaths: (dense: String, out: String) {
    switch self {
    case .bert: return ("pooler.dense", "classifier")
    case .roberta, .electra: return ("classifier.dense", "classifier.out_proj")
    case .distilbert: return ("pre_classifier", "classifier")
    }
  }

  /// Whether a tensor (our name, `classifier.out_proj.weight`) belongs to the classification head,
  /// which `*ForSequenceClassification` holds beside the base model, not inside it. BERT's pooler is
  /// part of the base model.
  public func isHeadTensor(_ name: String) -> Bool {
    let (dense, out) = headPaths
    return name.hasPrefix(out + ".") || (!hasPooler && name.hasPrefix(dense + "."))
  }

  /// The state-dict name of one of our tensors in the family's `*ForSequenceClassification`: the
  /// base model's tensors under `checkpointPrefix` (`bert.pooler.dense.weight`,
  /// `electra.embeddings_project.weight`), the head's as they are (`classifier.dense.weight`,
  /// `pre_classifier.bias`). What an export writes and what transformers loads without a missing
  /// or unexpected key.
  public func sequenceClassificationName(_ name: String) -> String {
    isHeadTensor(name) ? name : checkpointPrefix + name
  }
}

import PETLKernels

/// The sizes the engine needs from a BERT config (and nothing else), so a tiny random model for
/// gradient checks and the real checkpoint go through the same code.
public struct ModelDims: Hashable, Sendable, Codable {
  public var vocabSize: Int
  public var hidden: Int
  public var layers: Int
  public var heads: Int
  public var intermediate: Int
  public var maxPositions: Int
  public var typeVocab: Int
  public var numLabels: Int
  public var layerNormEps: Float

  public init(vocabSize: Int, hidden: Int, layers: Int, heads: Int, intermediate: Int,
              maxPositions: Int, typeVocab: Int, numLabels: Int, layerNormEps: Float = 1e-12) {
    self.vocabSize = vocabSize; self.hidden = hidden; self.layers = layers; self.heads = heads
    self.intermediate = intermediate; self.maxPositions = maxPositions; self.typeVocab = typeVocab
    self.numLabels = numLabels; self.layerNormEps = layerNormEps
  }
}

/// A module type of the encoder, named as the paper and PEFT name them. Per-layer kinds have one
/// block per encoder layer; `embeddings`, `pooler` and `classifier` have one block in all.
public enum ModuleKind: String, CaseIterable, Sendable, Codable {
  case embeddings
  case query, key, value
  case attnOut = "attn_out"
  case intermediate, output
  case lnAttn = "ln_attn"
  case lnOut = "ln_out"
  case pooler, classifier

  public static let perLayer: [ModuleKind] = [.query, .key, .value, .attnOut, .intermediate, .output, .lnAttn, .lnOut]

  public var isPerLayer: Bool { ModuleKind.perLayer.contains(self) }
  public var isLayerNorm: Bool { self == .lnAttn || self == .lnOut }

  /// HuggingFace module path (without `.weight` / `.bias`).
  public func hfPath(layer: Int) -> String {
    let p = "encoder.layer.\(layer)."
    switch self {
    case .query: return p + "attention.self.query"
    case .key: return p + "attention.self.key"
    case .value: return p + "attention.self.value"
    case .attnOut: return p + "attention.output.dense"
    case .intermediate: return p + "intermediate.dense"
    case .output: return p + "output.dense"
    case .lnAttn: return p + "attention.output.LayerNorm"
    case .lnOut: return p + "output.LayerNorm"
    case .embeddings: return "embeddings"
    case .pooler: return "pooler.dense"
    case .classifier: return "classifier"
    }
  }
}

/// What a tensor is, for weight decay and for the `bias` (BitFit) set.
public enum ParameterRole: String, Sendable {
  case weight, bias, table, gamma, beta
  /// AdamW applies no decay to LayerNorm parameters and biases.
  public var decays: Bool { self == .weight || self == .table }
}

/// One tensor in the slab, under its HuggingFace name.
public struct ParameterSlot: Sendable {
  public let name: String
  public let module: ModuleKind
  public let layer: Int?
  public let role: ParameterRole
  public let offset: Int
  public let shape: [Int]
  public var count: Int { shape.reduce(1, *) }
  public var range: Range<Int> { offset..<(offset + count) }
}

/// A module's two tensors (weight and bias, or a LayerNorm's gain and bias; consecutive in the
/// layout): the first one's slot index, for the gradient plan, and both offsets into the slab.
public struct TensorPair: Sendable {
  /// Slot of the weight (gain); the bias is `slot + 1`.
  public let slot: Int
  public let weight: Int
  public let bias: Int
}

/// One encoder layer's modules, resolved once with the layout (llm.c's parameter pointers).
public struct LayerParameters: Sendable {
  public let query, key, value, attnOut, intermediate, output, lnAttn, lnOut: TensorPair
}

/// One tensor: its slot index and its offset into the slab.
public struct TensorRef: Sendable {
  public let slot: Int
  public let offset: Int
}

/// The embedding tables and the embedding LayerNorm.
public struct EmbeddingParameters: Sendable {
  public let word, position, tokenType: TensorRef
  public let layerNorm: TensorPair
}

/// All parameters in one contiguous Float slab, laid out module-type-major with a leading layer axis
/// (llm.c style): for each per-layer module type, layer 0's weight then bias, layer 1's, and so on.
/// So one module type in all layers, or in one layer, is ONE contiguous range, and a trainable set
/// is a handful of ranges that gradients, the all-reduce, AdamW and adapter files all walk.
///
/// Order: embeddings (word, position, token type, LayerNorm), query, key, value, attn_out,
/// intermediate, output, ln_attn, ln_out (so all LayerNorms of the encoder are adjacent), pooler,
/// classifier. Every module's place is resolved here, once: the passes index `layers[l]`, never a
/// name.
public struct ParameterLayout: Sendable {
  public let dims: ModelDims
  public let slots: [ParameterSlot]
  public let count: Int
  public let embeddings: EmbeddingParameters
  public let layers: [LayerParameters]
  public let pooler: TensorPair
  public let classifier: TensorPair
  private let index: [String: Int]

  public init(dims d: ModelDims) {
    var slots: [ParameterSlot] = []
    var off = 0
    func add(_ name: String, _ m: ModuleKind, _ layer: Int?, _ role: ParameterRole, _ shape: [Int]) {
      slots.append(ParameterSlot(name: name, module: m, layer: layer, role: role, offset: off, shape: shape))
      off += shape.reduce(1, *)
    }
    let H = d.hidden, I = d.intermediate
    add("embeddings.word_embeddings.weight", .embeddings, nil, .table, [d.vocabSize, H])
    add("embeddings.position_embeddings.weight", .embeddings, nil, .table, [d.maxPositions, H])
    add("embeddings.token_type_embeddings.weight", .embeddings, nil, .table, [d.typeVocab, H])
    add("embeddings.LayerNorm.weight", .embeddings, nil, .gamma, [H])
    add("embeddings.LayerNorm.bias", .embeddings, nil, .beta, [H])
    for m in ModuleKind.perLayer {
      for l in 0..<d.layers {
        let p = m.hfPath(layer: l)
        switch m {
        case .lnAttn, .lnOut:
          add(p + ".weight", m, l, .gamma, [H]); add(p + ".bias", m, l, .beta, [H])
        case .intermediate:
          add(p + ".weight", m, l, .weight, [I, H]); add(p + ".bias", m, l, .bias, [I])
        case .output:
          add(p + ".weight", m, l, .weight, [H, I]); add(p + ".bias", m, l, .bias, [H])
        default:
          add(p + ".weight", m, l, .weight, [H, H]); add(p + ".bias", m, l, .bias, [H])
        }
      }
    }
    add("pooler.dense.weight", .pooler, nil, .weight, [H, H])
    add("pooler.dense.bias", .pooler, nil, .bias, [H])
    add("classifier.weight", .classifier, nil, .weight, [d.numLabels, H])
    add("classifier.bias", .classifier, nil, .bias, [d.numLabels])
    var index: [String: Int] = [:]
    for (i, s) in slots.enumerated() { index[s.name] = i }
    func pair(_ path: String) -> TensorPair {
      let i = index[path + ".weight"]!
      return TensorPair(slot: i, weight: slots[i].offset, bias: slots[i + 1].offset)
    }
    func layer(_ l: Int) -> LayerParameters {
      func p(_ m: ModuleKind) -> TensorPair { pair(m.hfPath(layer: l)) }
      return LayerParameters(query: p(.query), key: p(.key), value: p(.value), attnOut: p(.attnOut),
                             intermediate: p(.intermediate), output: p(.output), lnAttn: p(.lnAttn), lnOut: p(.lnOut))
    }
    self.dims = d
    self.slots = slots
    self.count = off
    self.index = index
    func single(_ name: String) -> TensorRef { let i = index[name]!; return TensorRef(slot: i, offset: slots[i].offset) }
    self.embeddings = EmbeddingParameters(
      word: single("embeddings.word_embeddings.weight"), position: single("embeddings.position_embeddings.weight"),
      tokenType: single("embeddings.token_type_embeddings.weight"), layerNorm: pair("embeddings.LayerNorm"))
    self.layers = (0..<d.layers).map(layer)
    self.pooler = pair("pooler.dense")
    self.classifier = pair("classifier")
  }

  public func slot(named name: String) -> ParameterSlot? { index[name].map { slots[$0] } }

  /// The contiguous range of a module type, in one layer or (layer nil) in all layers.
  public func range(of module: ModuleKind, layer: Int? = nil) -> Range<Int> {
    let s = slots.filter { $0.module == module && (layer == nil || $0.layer == layer) }
    return s.first!.offset..<(s.last!.offset + s.last!.count)
  }
}

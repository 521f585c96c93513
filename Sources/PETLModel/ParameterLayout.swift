
/// The sizes the engine needs from a config (and nothing else), so a tiny random model for gradient
/// checks and a real checkpoint go through the same code; `family` picks the tensor names, the
/// embeddings and the head (`EncoderFamily`).
public struct ModelDims: Hashable, Sendable, Codable {
  public var family: EncoderFamily
  public var vocabSize: Int
  public var hidden: Int
  public var layers: Int
  public var heads: Int
  public var intermediate: Int
  public var maxPositions: Int
  /// 0: no token-type table (DistilBERT).
  public var typeVocab: Int
  public var numLabels: Int
  public var layerNormEps: Float
  /// Width of the embedding tables (ELECTRA's `embedding_size`; projected to `hidden` when different).
  public var embedding: Int
  /// RoBERTa's padding id, from which its position ids count.
  public var padTokenId: Int

  public init(family: EncoderFamily = .bert, vocabSize: Int, hidden: Int, layers: Int, heads: Int, intermediate: Int,
              maxPositions: Int, typeVocab: Int, numLabels: Int, layerNormEps: Float = 1e-12, embedding: Int? = nil,
              padTokenId: Int = 0) {
    self.family = family
    self.vocabSize = vocabSize; self.hidden = hidden; self.layers = layers; self.heads = heads
    self.intermediate = intermediate; self.maxPositions = maxPositions; self.typeVocab = typeVocab
    self.numLabels = numLabels; self.layerNormEps = layerNormEps; self.embedding = embedding ?? hidden
    self.padTokenId = padTokenId
  }

  /// ELECTRA with `embedding_size` != `hidden_size` projects the embeddings (`embeddings_project`).
  public var projectsEmbeddings: Bool { embedding != hidden }

  /// The longest sequence the position table holds (`EncoderFamily.firstPosition`).
  public var maxTokens: Int { maxPositions - family.firstPosition(padTokenId: padTokenId) }
}

/// A module type of the encoder, named as the paper and PEFT name them. Per-layer kinds have one
/// block per encoder layer; `embeddings`, `pooler` and `classifier` have one block in all. Each
/// family's tensor names for them: `EncoderFamily.path(_:layer:)` and `headPaths`.
public enum ModuleKind: String, CaseIterable, Sendable, Codable {
  case embeddings
  case query, key, value
  case attnOut = "attn_out"
  case intermediate, output
  case lnAttn = "ln_attn"
  case lnOut = "ln_out"
  /// BERT's pooler (pretrained, in the base model). The other families have none.
  case pooler
  /// The sequence-classification head: BERT's `classifier`, RoBERTa's and ELECTRA's
  /// `classifier.dense` + `classifier.out_proj`, DistilBERT's `pre_classifier` + `classifier`.
  case classifier

  public static let perLayer: [ModuleKind] = [.query, .key, .value, .attnOut, .intermediate, .output, .lnAttn, .lnOut]

  public var isPerLayer: Bool { ModuleKind.perLayer.contains(self) }
  public var isLayerNorm: Bool { self == .lnAttn || self == .lnOut }
}

/// What a tensor is, for weight decay and for the `bias` (BitFit) set.
public enum ParameterRole: String, Sendable {
  case weight, bias, table, gamma, beta
  /// A LoRA adapter's down and up projections (`LoRASpec`); they decay like weights.
  case loraA = "lora_A", loraB = "lora_B"
  /// AdamW applies no decay to LayerNorm parameters and biases.
  public var decays: Bool { self == .weight || self == .table || isLoRA }
  public var isLoRA: Bool { self == .loraA || self == .loraB }
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
  /// Slot of the weight (gain); the bias is the next one (`biasSlot`).
  public let slot: Int
  public var biasSlot: Int { slot + 1 }
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

/// The embedding tables, the embedding LayerNorm and ELECTRA's projection to the hidden width.
public struct EmbeddingParameters: Sendable {
  public let word, position: TensorRef
  /// nil: no token-type table (DistilBERT).
  public let tokenType: TensorRef?
  public let layerNorm: TensorPair
  /// ELECTRA's `embeddings_project` [hidden, embedding] when the widths differ.
  public let project: TensorPair?
}

/// The head on the last layer's first token: a dense layer (BERT's pooler, or the head's own dense
/// layer) with the family's activation, then the output projection to the labels.
public struct HeadParameters: Sendable {
  public let dense: TensorPair
  public let out: TensorPair
}

/// All parameters in one contiguous Float slab, laid out module-type-major with a leading layer axis
/// (llm.c style): for each per-layer module type, layer 0's weight then bias, layer 1's, and so on.
/// So one module type in all layers, or in one layer, is ONE contiguous range, and a trainable set
/// is a handful of ranges that gradients, the all-reduce, AdamW and adapter files all walk.
///
/// Order: embeddings (word, position, token type, LayerNorm, projection), query, key, value,
/// attn_out, intermediate, output, ln_attn, ln_out (so all LayerNorms of the encoder are adjacent),
/// the head's dense layer (BERT's pooler), the output projection. Slots carry the family's
/// HuggingFace names without the checkpoint prefix (`encoder.layer.3.output.LayerNorm.weight`,
/// `transformer.layer.3.output_layer_norm.weight`, `classifier.out_proj.weight`). Every module's
/// place is resolved here, once: the passes index `layers[l]`, never a name.
public struct ParameterLayout: Sendable {
  public let dims: ModelDims
  public let slots: [ParameterSlot]
  public let count: Int
  public let embeddings: EmbeddingParameters
  public let layers: [LayerParameters]
  public let head: HeadParameters
  /// The LoRA adapters (nil: none). Their A and B follow the head, target by target.
  public let lora: LoRASpec?
  /// Per slot: for a targeted linear layer's weight, its adapter; nil elsewhere.
  private let loraPairs: [LoRAPair?]
  private let index: [String: Int]

  /// The layout of `d`'s model, with `lora`'s adapters appended after the head (nil: none, the
  /// layout every module-wise cell uses; the base part is the same with or without them).
  public init(dims d: ModelDims, lora: LoRASpec? = nil) {
    var slots: [ParameterSlot] = []
    var off = 0
    func add(_ name: String, _ m: ModuleKind, _ layer: Int?, _ role: ParameterRole, _ shape: [Int]) {
      slots.append(ParameterSlot(name: name, module: m, layer: layer, role: role, offset: off, shape: shape))
      off += shape.reduce(1, *)
    }
    let H = d.hidden, I = d.intermediate, E = d.embedding, family = d.family
    add("embeddings.word_embeddings.weight", .embeddings, nil, .table, [d.vocabSize, E])
    add("embeddings.position_embeddings.weight", .embeddings, nil, .table, [d.maxPositions, E])
    if family.hasTokenTypeTable {
      add("embeddings.token_type_embeddings.weight", .embeddings, nil, .table, [d.typeVocab, E])
    }
    add("embeddings.LayerNorm.weight", .embeddings, nil, .gamma, [E])
    add("embeddings.LayerNorm.bias", .embeddings, nil, .beta, [E])
    if d.projectsEmbeddings {
      add("embeddings_project.weight", .embeddings, nil, .weight, [H, E])
      add("embeddings_project.bias", .embeddings, nil, .bias, [H])
    }
    for m in ModuleKind.perLayer {
      for l in 0..<d.layers {
        let p = family.path(m, layer: l)
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
    let (densePath, outPath) = family.headPaths
    let denseKind: ModuleKind = family.hasPooler ? .pooler : .classifier
    add(densePath + ".weight", denseKind, nil, .weight, [H, H])
    add(densePath + ".bias", denseKind, nil, .bias, [H])
    add(outPath + ".weight", .classifier, nil, .weight, [d.numLabels, H])
    add(outPath + ".bias", .classifier, nil, .bias, [d.numLabels])
    // LoRA: <module>.lora_A.weight [R, in], <module>.lora_B.weight [out, R], PEFT's names
    var loraSlots: [(base: String, a: Int, kind: Int)] = []
    if let lora {
      for t in lora.targets {
        precondition(t.layer >= 0 && t.layer < d.layers, "LoRA target layer \(t.layer) out of range")
        let p = family.path(t.module, layer: t.layer), (i, o) = t.module.linearWidths(d)
        loraSlots.append((p + ".weight", slots.count, ModuleKind.perLayer.firstIndex(of: t.module)!))
        add(p + ".lora_A.weight", t.module, t.layer, .loraA, [lora.rank, i])
        add(p + ".lora_B.weight", t.module, t.layer, .loraB, [o, lora.rank])
      }
    }
    var index: [String: Int] = [:]
    for (i, s) in slots.enumerated() { index[s.name] = i }
    func pair(_ path: String) -> TensorPair {
      let i = index[path + ".weight"]!
      return TensorPair(slot: i, weight: slots[i].offset, bias: slots[i + 1].offset)
    }
    func layer(_ l: Int) -> LayerParameters {
      func p(_ m: ModuleKind) -> TensorPair { pair(family.path(m, layer: l)) }
      return LayerParameters(query: p(.query), key: p(.key), value: p(.value), attnOut: p(.attnOut),
                             intermediate: p(.intermediate), output: p(.output), lnAttn: p(.lnAttn), lnOut: p(.lnOut))
    }
    self.dims = d
    self.slots = slots
    self.count = off
    self.index = index
    self.lora = lora
    var pairs = [LoRAPair?](repeating: nil, count: slots.count)
    for (base, a, kind) in loraSlots {
      pairs[index[base]!] = LoRAPair(aSlot: a, a: slots[a].offset, b: slots[a + 1].offset, rank: lora!.rank, kindIndex: kind)
    }
    self.loraPairs = pairs
    func single(_ name: String) -> TensorRef { let i = index[name]!; return TensorRef(slot: i, offset: slots[i].offset) }
    self.embeddings = EmbeddingParameters(
      word: single("embeddings.word_embeddings.weight"), position: single("embeddings.position_embeddings.weight"),
      tokenType: family.hasTokenTypeTable ? single("embeddings.token_type_embeddings.weight") : nil,
      layerNorm: pair("embeddings.LayerNorm"), project: d.projectsEmbeddings ? pair("embeddings_project") : nil)
    self.layers = (0..<d.layers).map(layer)
    self.head = HeadParameters(dense: pair(densePath), out: pair(outPath))
  }

  public func slot(named name: String) -> ParameterSlot? { index[name].map { slots[$0] } }

  /// The adapter of a linear layer (nil: not targeted, or no LoRA).
  @inline(__always)
  public func loraPair(_ t: TensorPair) -> LoRAPair? { loraPairs[t.slot] }

  /// Floats of the model without its adapters (a prefix of the slab).
  public var baseCount: Int { lora == nil ? count : slots.first(where: { $0.role.isLoRA })?.offset ?? count }

  /// The contiguous range of a module type, in one layer or (layer nil) in all layers; empty when the
  /// family has no such module (the pooler outside BERT). LoRA adapters are not part of it.
  public func range(of module: ModuleKind, layer: Int? = nil) -> Range<Int> {
    let s = slots.filter { $0.module == module && (layer == nil || $0.layer == layer) && !$0.role.isLoRA }
    guard let first = s.first, let last = s.last else { return 0..<0 }
    return first.offset..<(last.offset + last.count)
  }

  /// The module path (HF name without `.weight`/`.bias`) of a slot's module, for messages and `inspect`.
  public func modulePath(of slot: ParameterSlot) -> String {
    for suffix in [".weight", ".bias"] where slot.name.hasSuffix(suffix) { return String(slot.name.dropLast(suffix.count)) }
    return slot.name
  }
}

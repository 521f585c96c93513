/// Which parameters a cell trains: module types (as HuggingFace and PEFT name them) in all layers or
/// in chosen layers, resolved against the slab layout into contiguous segments. The gradient slab
/// holds exactly these parameters, concatenated in slab order: the all-reduce sends it whole,
/// AdamW walks its segments, and nothing frozen ever gets a gradient.
public struct TrainableSet: Sendable {
  /// Names `--modules` accepts.
  public static let knownModules = [
    "query", "key", "value", "attn_out", "intermediate", "output", "ln_attn", "ln_out", "layernorm",
    "bias", "embeddings", "pooler", "classifier", "full", "random",
  ]

  /// Where a slot's gradient lives in the gradient slab.
  public enum SlotGradient: Sendable {
    /// The whole tensor trains; its gradient is `count` floats at `gradOffset`.
    case full(gradOffset: Int)
    /// Only some elements train (the `random` control): element `indices[k]` of the tensor has its
    /// gradient at `gradOffset + k`.
    case partial(gradOffset: Int, indices: [Int])
  }

  /// A run of trainable parameters that is contiguous in both slabs.
  public struct Segment: Sendable, Hashable {
    public let paramOffset: Int
    public let gradOffset: Int
    public let count: Int
    /// AdamW weight decay applies (not LayerNorm, not biases).
    public let decays: Bool
  }

  public let layout: ParameterLayout
  public let modules: [String]
  public let layers: LayerSelection
  /// Per slot of the layout: nil when frozen.
  public let slotGradients: [SlotGradient?]
  public let segments: [Segment]
  /// Number of trainable scalars: the gradient slab's length.
  public let count: Int
  /// Lowest encoder layer holding a trainable parameter; -1 when the embeddings train; `layers`
  /// when only the pooler/classifier train. Backward stops there.
  public let lowestLayer: Int
  public let includesPooler: Bool

  public init(modules: [String], layers: LayerSelection, layout: ParameterLayout,
              randomCount: Int? = nil, seed: UInt64 = 0) throws {
    guard !modules.isEmpty else { throw PETLError("--modules: no trainable set given") }
    let L = layout.dims.layers
    var layerSet: Set<Int>
    switch layers {
    case .all: layerSet = Set(0..<L)
    case .indices(let idx):
      guard !idx.isEmpty else { throw PETLError("--layers: empty layer list") }
      if let bad = idx.first(where: { $0 >= L }) {
        throw PETLError("--layers: layer \(bad) does not exist (the model has layers 0...\(L - 1))")
      }
      layerSet = Set(idx)
    }
    var chosen = [Bool](repeating: false, count: layout.slots.count)
    var partialIdx: [Int: [Int]] = [:]
    func mark(_ pred: (ParameterSlot) -> Bool) {
      for (i, s) in layout.slots.enumerated() where pred(s) { chosen[i] = true }
    }
    func inLayers(_ s: ParameterSlot) -> Bool { s.layer.map { layerSet.contains($0) } ?? false }
    for m in modules {
      switch m {
      case "query", "key", "value", "attn_out", "intermediate", "output", "ln_attn", "ln_out":
        let kind = ModuleKind(rawValue: m)!
        mark { $0.module == kind && inLayers($0) }
      case "layernorm":
        mark { $0.module.isLayerNorm && inLayers($0) }
      case "bias":
        // BitFit: every bias of the chosen encoder layers (LayerNorm betas included), plus the
        // embeddings LayerNorm bias when all layers are chosen. The pooler only when chosen.
        mark { ($0.role == .bias || $0.role == .beta) && inLayers($0) }
        if case .all = layers { mark { $0.name == "embeddings.LayerNorm.bias" } }
      case "embeddings": mark { $0.module == .embeddings }
      case "pooler": mark { $0.module == .pooler }
      case "classifier": break
      case "full": mark { _ in true }
      case "random":
        guard let k = randomCount, k > 0 else {
          throw PETLError("--modules random needs a positive count (--random-count K or --match SET)")
        }
        // Drawn from the chosen layers' parameters (all encoder layers for `all`): a control for a
        // layer-wise set compares with any scalars of the same layer.
        let encoder = layout.slots.enumerated().filter { inLayers($0.element) }
        let total = encoder.reduce(0) { $0 + $1.element.count }
        guard k <= total else { throw PETLError("--random-count \(k) exceeds the \(total) parameters of layers \(layers)") }
        var rng = SeededGenerator(seed: CounterRNG.key(seed, 0x7261_6E64))
        var picked = Set<Int>()
        while picked.count < k { picked.insert(Int(rng.next() % UInt64(total))) }
        // Map flat encoder indices back to (slot, element).
        let sortedPicks = picked.sorted()
        var p = 0, base = 0
        for (i, s) in encoder {
          var list: [Int] = []
          while p < sortedPicks.count && sortedPicks[p] < base + s.count { list.append(sortedPicks[p] - base); p += 1 }
          if !list.isEmpty { partialIdx[i] = list }
          base += s.count
        }
      default:
        throw PETLError("--modules: unknown trainable set '\(m)' (known: \(TrainableSet.knownModules.joined(separator: ", ")))")
      }
    }
    // The classifier head always trains.
    mark { $0.module == .classifier }

    var grads = [SlotGradient?](repeating: nil, count: layout.slots.count)
    var segs: [Segment] = []
    var g = 0
    var lowest = L
    for (i, s) in layout.slots.enumerated() {
      if chosen[i] {
        grads[i] = .full(gradOffset: g)
        segs.append(Segment(paramOffset: s.offset, gradOffset: g, count: s.count, decays: s.role.decays))
        g += s.count
      } else if let idx = partialIdx[i] {
        grads[i] = .partial(gradOffset: g, indices: idx)
        for (k, e) in idx.enumerated() {
          segs.append(Segment(paramOffset: s.offset + e, gradOffset: g + k, count: 1, decays: s.role.decays))
        }
        g += idx.count
      } else { continue }
      if s.module == .embeddings { lowest = -1 } else if let l = s.layer { lowest = min(lowest, l) }
    }
    self.layout = layout
    self.modules = modules
    self.layers = layers
    self.slotGradients = grads
    self.segments = segs
    self.count = g
    self.lowestLayer = lowest
    self.includesPooler = grads[layout.slotIndex(named: "pooler.dense.weight")!] != nil
  }

  /// HF names of the tensors that train (wholly or in part), in slab order.
  public var trainableNames: [String] {
    layout.slots.indices.filter { slotGradients[$0] != nil }.map { layout.slots[$0].name }
  }

  /// Identity of the plan for the data-parallel pre-flight check: every rank of a group must
  /// train exactly the same scalars in the same gradient order.
  public var planHash: String {
    var s = "\(layout.count);"
    for seg in segments { s += "\(seg.paramOffset):\(seg.count):\(seg.gradOffset),"}
    return fnv1a64Hex(s)
  }

  public var fractionOfModel: Double { Double(count) / Double(layout.count) }
}

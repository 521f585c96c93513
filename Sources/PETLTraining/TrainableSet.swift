import Foundation
import PETLKernels
import PETLModel
import PETLSupport

/// Which parameters a cell trains: module types (as HuggingFace and PEFT name them) in all layers or
/// in chosen layers, resolved against the slab layout into a `GradientPlan` (contiguous segments).
/// The gradient slab holds exactly these parameters, concatenated in slab order: the all-reduce
/// sends it whole, AdamW walks its segments, and nothing frozen ever gets a gradient.
public struct TrainableSet: Sendable {
  public let modules: [TrainableModule]
  public let layers: LayerSelection
  public let method: TuningMethod
  /// What the engine sees of this set: which slots (or elements) train and where their gradients go.
  public let plan: GradientPlan

  public var layout: ParameterLayout { plan.layout }
  /// Number of trainable scalars: the gradient slab's length.
  public var count: Int { plan.count }

  /// `method` lora: the LoRA adapters of the modules in the layers (the layout must hold them:
  /// `TrainOptions.loraSpec`), never their weights. A module-wise set never touches adapters the
  /// layout may hold, so its plan is the same with or without them.
  public init(modules: [TrainableModule], layers: LayerSelection, layout: ParameterLayout,
              randomCount: Int? = nil, seed: UInt64 = 0, method: TuningMethod = .module) throws {
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
      for (i, s) in layout.slots.enumerated() where !s.role.isLoRA && pred(s) { chosen[i] = true }
    }
    func inLayers(_ s: ParameterSlot) -> Bool { s.layer.map { layerSet.contains($0) } ?? false }
    if method == .lora {
      let kinds = try TrainableModule.loraKinds(modules)
      for (i, s) in layout.slots.enumerated() where s.role.isLoRA && kinds.contains(s.module) && inLayers(s) { chosen[i] = true }
      let wanted = Set(kinds).count * layerSet.count * 2
      guard chosen.count(where: { $0 }) == wanted else {
        throw PETLError("--method lora: the model's layout holds no adapters for \(TrainableModule.name(modules))@\(layers) (build it with TrainOptions.loraSpec)")
      }
    }
    for m in modules where method == .module {
      switch m {
      case .query, .key, .value, .attnOut, .intermediate, .output, .lnAttn, .lnOut, .layernorm:
        let kinds = m.kinds
        mark { kinds.contains($0.module) && inLayers($0) }
      case .bias:
        // BitFit: every bias of the chosen encoder layers (LayerNorm betas included), plus the
        // embeddings LayerNorm bias when all layers are chosen. The pooler only when chosen.
        mark { ($0.role == .bias || $0.role == .beta) && inLayers($0) }
        if case .all = layers { mark { $0.name == "embeddings.LayerNorm.bias" } }
      case .embeddings: mark { $0.module == .embeddings }
      case .pooler:
        guard layout.dims.family.hasPooler else {
          throw PETLError("--modules pooler: a \(layout.dims.family.rawValue) model has no pooler (its head's dense layer trains with the head)")
        }
        mark { $0.module == .pooler }
      case .classifier: break
      case .full: mark { _ in true }
      case .random:
        guard let k = randomCount, k > 0 else {
          throw PETLError("--modules random needs a positive count (--random-count K or --match SET)")
        }
        // Drawn from the chosen layers' parameters (all encoder layers for `all`): a control for a
        // layer-wise set compares with any scalars of the same layer.
        let encoder = layout.slots.enumerated().filter { inLayers($0.element) && !$0.element.role.isLoRA }
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
      }
    }
    // The classifier head always trains.
    mark { $0.module == .classifier }

    self.modules = modules
    self.layers = layers
    self.method = method
    self.plan = GradientPlan(layout: layout, whole: chosen, partial: partialIdx)
  }

  /// Identity of the plan for the data-parallel pre-flight check: every rank of a group must
  /// train exactly the same scalars in the same gradient order.
  public var planHash: String {
    var s = "\(plan.layout.count);"
    for seg in plan.segments { s += "\(seg.paramOffset):\(seg.count):\(seg.gradOffset),"}
    return fnv1a64Hex(s)
  }

  public var fractionOfModel: Double { Double(plan.count) / Double(plan.layout.count) }
}

extension AdapterFile {
  /// An adapter of a cell: its trainable tensors, and the set they came from in the metadata.
  public static func save(_ model: EncoderModel, trainable: TrainableSet, to url: URL, metadata extra: [String: String] = [:]) throws {
    var meta = extra
    meta["swift_petl.modules"] = trainable.modules.map(\.rawValue).joined(separator: ",")
    meta["swift_petl.layers"] = trainable.layers.description
    if trainable.method == .lora, let lora = model.layout.lora {
      meta["swift_petl.method"] = "lora"
      meta["swift_petl.lora_rank"] = String(lora.rank)
      meta["swift_petl.lora_alpha"] = String(lora.alpha)
      meta["swift_petl.lora_dropout"] = String(lora.dropout)
    }
    try save(model, plan: trainable.plan, to: url, metadata: meta)
  }
}

import PETLKernels

/// Low-rank adapters as PEFT's `LoraConfig` defines them (Hu et al., 2021): a targeted linear layer
/// computes y = W x + b + (alpha/R) · B(A(dropout(x))), A [R, in] and B [out, R], W and b frozen.
/// The adapters of a model are one `LoRASpec`; the layout appends their tensors to the slab after
/// the head (`ParameterLayout(dims:lora:)`), so the gradient plan, AdamW, clipping, the all-reduce
/// and adapter files walk them like any other trainable tensor.
public struct LoRASpec: Hashable, Sendable {
  /// The weight-matrix module kinds LoRA can target (PEFT's `target_modules` of the paper's grid).
  public static let kinds: [ModuleKind] = [.query, .key, .value, .attnOut, .intermediate, .output]

  public let rank: Int
  public let alpha: Double
  public let dropout: Double
  /// The adapted (module kind, layer) pairs, module-type-major as the slab (`ParameterLayout`).
  public let targets: [LoRATarget]

  /// The adapters of `kinds` in `layers`, in the slab's order whatever the order given.
  public init(rank: Int, alpha: Double, dropout: Double, kinds: [ModuleKind], layers: [Int]) {
    precondition(rank > 0 && kinds.allSatisfy { LoRASpec.kinds.contains($0) }, "LoRASpec: rank > 0 on weight-matrix kinds")
    self.rank = rank; self.alpha = alpha; self.dropout = dropout
    let ls = Set(layers).sorted()
    targets = ModuleKind.perLayer.filter { kinds.contains($0) }.flatMap { m in ls.map { LoRATarget(module: m, layer: $0) } }
  }

  /// Adapters on exactly these targets (any order; kept in the slab's).
  public init(rank: Int, alpha: Double, dropout: Double, targets: [LoRATarget]) {
    precondition(rank > 0 && targets.allSatisfy { LoRASpec.kinds.contains($0.module) }, "LoRASpec: rank > 0 on weight-matrix kinds")
    self.rank = rank; self.alpha = alpha; self.dropout = dropout
    let order = ModuleKind.perLayer
    self.targets = Set(targets).sorted { (order.firstIndex(of: $0.module)!, $0.layer) < (order.firstIndex(of: $1.module)!, $1.layer) }
  }

  /// PEFT's `scaling` (lora_alpha / r; no rsLoRA).
  public var scale: Float { Float(alpha / Double(rank)) }
}

public struct LoRATarget: Hashable, Sendable {
  public let module: ModuleKind
  public let layer: Int
  public init(module: ModuleKind, layer: Int) { self.module = module; self.layer = layer }
}

/// One adapted linear layer, resolved once with the layout: the slots and slab offsets of its A and B.
public struct LoRAPair: Sendable {
  public let aSlot: Int
  public var bSlot: Int { aSlot + 1 }
  public let a: Int
  public let b: Int
  public let rank: Int
  /// Position of the module kind in `ModuleKind.perLayer`: with the layer, its dropout stream.
  public let kindIndex: Int
}

extension ModuleKind {
  /// A weight matrix's (in, out) widths.
  func linearWidths(_ d: ModelDims) -> (input: Int, output: Int) {
    switch self {
    case .intermediate: return (d.hidden, d.intermediate)
    case .output: return (d.intermediate, d.hidden)
    default: return (d.hidden, d.hidden)
    }
  }
}

extension EncoderModel {
  /// This model's weights in a model whose layout also holds `lora`'s adapters: the slab is this
  /// one's followed by the adapters', A drawn as PEFT draws it (`kaiming_uniform_(a=√5)` on [R, in],
  /// i.e. U(-1/√in, 1/√in)) from `seed`, B zero, so the new model computes what this one does. The new
  /// model computes in fp32 until its own `setPrecision` (which rounds A and B with the weights).
  public func withLoRA(_ lora: LoRASpec, seed: UInt64) -> EncoderModel {
    precondition(layout.lora == nil, "withLoRA: the model has adapters already")
    let m = EncoderModel(layout: ParameterLayout(dims: dims, lora: lora), hiddenDropout: hiddenDropout,
                         attentionDropout: attentionDropout, classifierDropout: classifierDropout)
    m.params.update(from: params, count: layout.count)
    m.initializeLoRA(seed: seed)
    return m
  }

  /// Draws every A (PEFT's Kaiming-uniform) and zeroes every B.
  public func initializeLoRA(seed: UInt64) {
    var rng = SeededGenerator(seed: CounterRNG.key(seed, 0x6C6F_7261))
    for s in layout.slots where s.role == .loraA || s.role == .loraB {
      let p = pointer(s)
      if s.role == .loraB { p.update(repeating: 0, count: s.count); continue }
      let bound = 1 / Float(s.shape[1]).squareRoot()
      for i in 0..<s.count { p[i] = bound * (2 * Float(rng.next() >> 40) * (1 / 16_777_216) - 1) }
    }
  }

  /// The adapters merged into their weights, W += (alpha/R) · B·A, in a model of the base layout
  /// (what `export` writes without `--peft`, and what PEFT's `merge_and_unload` computes).
  public func mergedLoRA() -> EncoderModel {
    let base = ParameterLayout(dims: dims)
    let m = EncoderModel(layout: base, hiddenDropout: hiddenDropout, attentionDropout: attentionDropout,
                         classifierDropout: classifierDropout)
    m.params.update(from: params, count: base.count)
    guard let lora = layout.lora else { return m }
    for l in 0..<dims.layers {
      for t in layout.layers[l].linears {
        guard let pair = layout.loraPair(t) else { continue }
        let (i, o) = layout.slots[t.slot].module.linearWidths(dims)
        // W [o,i] += s · B [o,R] · A [R,i]
        BLAS.gemm(transA: false, transB: false, m: o, n: i, k: pair.rank, alpha: lora.scale, a: params + pair.b,
                  b: params + pair.a, beta: 1, c: m.params + t.weight)
      }
    }
    return m
  }
}

extension LayerParameters {
  /// The six weight-matrix modules, in `ModuleKind.perLayer` order.
  public var linears: [TensorPair] { [query, key, value, attnOut, intermediate, output] }
}


/// Which parameters get a gradient and where it lives in the gradient slab: all the backward pass,
/// the optimizer and the all-reduce need to know of a trainable set, in the layout's own terms
/// (slots and element indices, never module names). The gradient slab holds exactly these
/// parameters, concatenated in slab order.
public struct GradientPlan: Sendable {
  /// Where a slot's gradient lives in the gradient slab.
  public enum Target: Sendable {
    /// The whole tensor trains; its gradient is the slot's `count` floats at `gradOffset`.
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

  /// How far down the encoder a backward pass goes.
  public enum Reach: Equatable, Sendable {
    /// Down to the embedding tables (they, or the embedding LayerNorm, train).
    case embeddings
    /// Down to encoder layer `l` and no further.
    case layer(Int)
    /// Only BERT's pooler and the head: backward ends below the pooler.
    case pooler
    /// Only the classification head (all of it: the other families' head has its own dense layer):
    /// backward ends in the head.
    case head
  }

  public let layout: ParameterLayout
  /// Per slot of the layout: nil when frozen.
  public let targets: [Target?]
  public let segments: [Segment]
  /// Number of trainable scalars: the gradient slab's length.
  public let count: Int
  public let reach: Reach
  /// Per encoder layer, how far its backward goes (from `reach` and the layer's trainable modules).
  public let layerReach: [LayerReach]

  /// `whole[i]`: slot i trains entirely; `partial[i]`: only these elements of slot i train.
  public init(layout: ParameterLayout, whole: [Bool], partial: [Int: [Int]] = [:]) {
    precondition(whole.count == layout.slots.count, "GradientPlan: one flag per slot")
    var targets = [Target?](repeating: nil, count: layout.slots.count)
    var segs: [Segment] = []
    var g = 0
    for (i, s) in layout.slots.enumerated() {
      if whole[i] {
        targets[i] = .full(gradOffset: g)
        segs.append(Segment(paramOffset: s.offset, gradOffset: g, count: s.count, decays: s.role.decays))
        g += s.count
      } else if let idx = partial[i], !idx.isEmpty {
        targets[i] = .partial(gradOffset: g, indices: idx)
        for (k, e) in idx.enumerated() {
          segs.append(Segment(paramOffset: s.offset + e, gradOffset: g + k, count: 1, decays: s.role.decays))
        }
        g += idx.count
      }
    }
    self.layout = layout
    self.targets = targets
    self.segments = segs
    self.count = g
    let reach = Self.lowestPlace(of: targets, layout: layout)
    self.reach = reach
    self.layerReach = layout.layers.enumerated().map { l, p in
      if case .layer(let lowest) = reach, lowest == l {
        // a module trains when its weight, its bias or its LoRA adapter does
        func trains(_ t: TensorPair) -> Bool {
          Self.trains(t, in: targets) || layout.loraPair(t).map { targets[$0.aSlot] != nil || targets[$0.bSlot] != nil } ?? false
        }
        if trains(p.query) || trains(p.key) || trains(p.value) { return .projections }
        if trains(p.attnOut) { return .attnOut }
        if trains(p.lnAttn) { return .lnAttn }
        if trains(p.intermediate) { return .intermediate }
        if trains(p.output) { return .output }
        return .lnOut
      }
      if case .layer(let lowest) = reach, lowest > l { return .lnOut }  // never visited
      return .input
    }
  }

  /// The lowest place a trainable slot sits. One definition: the backward pass, the activation
  /// store and the frozen-prefix cache all read it from here.
  private static func lowestPlace(of targets: [Target?], layout: ParameterLayout) -> Reach {
    var lowest: Int?
    for (i, s) in layout.slots.enumerated() where targets[i] != nil {
      if s.module == .embeddings { return .embeddings }
      if let l = s.layer { lowest = min(lowest ?? l, l) }
    }
    if let lowest { return .layer(lowest) }
    let poolerTrains = layout.dims.family.hasPooler && trains(layout.head.dense, in: targets)
    return poolerTrains ? .pooler : .head
  }

  public func trains(_ slot: Int) -> Bool { targets[slot] != nil }

  /// A module trains when its weight (gain) or its bias does (BitFit trains the bias alone).
  public func trains(_ pair: TensorPair) -> Bool { Self.trains(pair, in: targets) }

  private static func trains(_ pair: TensorPair, in targets: [Target?]) -> Bool {
    targets[pair.slot] != nil || targets[pair.biasSlot] != nil
  }

  /// Lowest encoder layer holding a trainable parameter: -1 when the embeddings train, the number
  /// of layers when only BERT's pooler or the head do.
  public var lowestLayer: Int {
    switch reach {
    case .embeddings: return -1
    case .layer(let l): return l
    case .pooler, .head: return layout.dims.layers
    }
  }

  /// The frozen prefix a cell can cache: layer l when nothing below layer l > 0 trains (the hidden
  /// states entering l are fixed), the number of layers when only the classifier trains (the pooled
  /// outputs, or the other families' [CLS] rows, are fixed); nil when the embeddings, layer 0 or BERT's
  /// pooler train.
  public var frozenPrefix: Int? {
    switch reach {
    case .layer(let l) where l > 0: return l
    case .head: return layout.dims.layers
    default: return nil
    }
  }

  /// BERT's pooler trains (the other families have none).
  public var includesPooler: Bool {
    layout.dims.family.hasPooler && trains(layout.head.dense)
  }

  /// HF names of the tensors that train (wholly or in part), in slab order.
  public var trainableNames: [String] {
    layout.slots.indices.filter { targets[$0] != nil }.map { layout.slots[$0].name }
  }
}

/// How far one encoder layer's backward goes, from its output down (the order of the pass): the
/// output LayerNorm's gradients only, on through the FFN output dense, the intermediate dense, the
/// attention LayerNorm, the attention output dense, the q/k/v projections, or down to the layer's
/// input (something below it trains).
public enum LayerReach: Int, Comparable, Sendable {
  case lnOut, output, intermediate, lnAttn, attnOut, projections, input
  public static func < (a: LayerReach, b: LayerReach) -> Bool { a.rawValue < b.rawValue }
}

import PETLKernels

/// An encoder of one of the families (`EncoderFamily`) with its sequence-classification (or
/// regression, numLabels == 1) head, its parameters in one slab laid out by `ParameterLayout`.
public final class EncoderModel {
  public let dims: ModelDims
  public let layout: ParameterLayout
  /// The parameter slab (layout.count floats), owned by the model.
  public let params: UnsafeMutablePointer<Float>
  /// Dropout probabilities: hidden (embeddings, attention output, FFN output), attention probabilities,
  /// and the classifier's input.
  public var hiddenDropout: Float
  public var attentionDropout: Float
  public var classifierDropout: Float

  public var isRegression: Bool { dims.numLabels == 1 }

  /// The precision of the GEMMs (`setPrecision`); fp32 until set.
  public internal(set) var precision: Precision = .fp32
  /// The bf16 operands of the GEMMs when `precision` is bf16.
  var bf16: BF16Operands?

  public convenience init(dims: ModelDims, hiddenDropout: Float = 0.1, attentionDropout: Float = 0.1, classifierDropout: Float? = nil) {
    self.init(layout: ParameterLayout(dims: dims), hiddenDropout: hiddenDropout, attentionDropout: attentionDropout,
              classifierDropout: classifierDropout)
  }

  /// A model on a layout already built (and its sizes checked: `CheckpointPlan`), parameters zero.
  public init(layout: ParameterLayout, hiddenDropout: Float = 0.1, attentionDropout: Float = 0.1, classifierDropout: Float? = nil) {
    self.dims = layout.dims
    self.layout = layout
    self.params = .allocate(capacity: layout.count)
    params.initialize(repeating: 0, count: layout.count)
    self.hiddenDropout = hiddenDropout
    self.attentionDropout = attentionDropout
    self.classifierDropout = classifierDropout ?? hiddenDropout
  }

  deinit { params.deallocate() }

  public func pointer(_ slot: ParameterSlot) -> UnsafeMutablePointer<Float> { params + slot.offset }


  /// Initialises slots as transformers does for fresh modules: weights and tables N(0, 0.02), biases 0,
  /// LayerNorm gain 1 and bias 0. Used for a missing head and for random test models.
  public func initialize(slots: [ParameterSlot], seed: UInt64) {
    var rng = SeededGenerator(seed: seed)
    for s in slots {
      let p = pointer(s)
      switch s.role {
      case .weight, .table: for i in 0..<s.count { p[i] = 0.02 * rng.normal() }
      case .bias, .beta: p.update(repeating: 0, count: s.count)
      case .gamma: p.update(repeating: 1, count: s.count)
      case .loraA, .loraB: break  // `initializeLoRA`
      }
    }
  }

  /// Copies the parameter slab (for tests and for "frozen values never change" checks).
  public func snapshot() -> [Float] { Array(UnsafeBufferPointer(start: params, count: layout.count)) }
}

import PETLKernels
import PETLSupport

/// What the model's GEMMs read in bf16 (`Precision.bf16`): every linear layer's weight rounded to
/// bf16, and its bias rounded to a bf16 value (kept as a Float, the form oneDNN adds it in), as
/// PyTorch's CPU autocast casts `linear`'s weight and bias; and every LoRA A and B (PEFT's
/// `lora_A` / `lora_B` are `nn.Linear`s without bias, which autocast casts alike). The fp32 slab
/// stays the master copy: a frozen tensor is rounded once here, a trainable one again after every
/// update (`refresh`).
final class BF16Operands {
  /// Per slot of the layout: where its rounded copy starts (weights in `weights`, biases in
  /// `biases`), nil for what no GEMM reads (tables, LayerNorms).
  private let offsets: [Int?]
  let weights: UnsafeMutablePointer<BF16>
  let biases: UnsafeMutablePointer<Float>
  let weightCount: Int, biasCount: Int

  init(layout: ParameterLayout, params: UnsafePointer<Float>) {
    var offsets = [Int?](repeating: nil, count: layout.slots.count)
    var w = 0, b = 0
    for (i, s) in layout.slots.enumerated() {
      switch s.role {
      case .weight, .loraA, .loraB: offsets[i] = w; w += s.count
      case .bias: offsets[i] = b; b += s.count
      default: break
      }
    }
    self.offsets = offsets
    weightCount = w; biasCount = b
    weights = .allocate(capacity: max(w, 1))
    biases = .allocate(capacity: max(b, 1))
    refresh(slots: Array(layout.slots.indices), layout: layout, params: params)
  }

  deinit { weights.deallocate(); biases.deallocate() }

  /// Rounds these slots again from the fp32 slab (after an optimizer step changed them).
  func refresh(slots: [Int], layout: ParameterLayout, params: UnsafePointer<Float>) {
    for i in slots {
      guard let o = offsets[i] else { continue }
      let s = layout.slots[i]
      if s.role != .bias {
        BFloat16.convertParallel(params + s.offset, weights + o, count: s.count)
      } else {
        for j in 0..<s.count { biases[o + j] = BFloat16.float(BFloat16.round(params[s.offset + j])) }
      }
    }
  }

  func weight(_ t: TensorPair) -> UnsafePointer<BF16> { UnsafePointer(weights + offsets[t.slot]!) }
  func bias(_ t: TensorPair) -> UnsafePointer<Float> { UnsafePointer(biases + offsets[t.slot + 1]!) }
  /// A LoRA adapter's rounded A [R,in] and B [out,R].
  func adapter(_ pair: LoRAPair) -> (a: UnsafePointer<BF16>, b: UnsafePointer<BF16>) {
    (UnsafePointer(weights + offsets[pair.aSlot]!), UnsafePointer(weights + offsets[pair.bSlot]!))
  }

  /// Whether a slot has a rounded copy (a linear layer's weight or bias).
  func holds(_ slot: Int) -> Bool { offsets[slot] != nil }

  var bytes: Int { 2 * weightCount + 4 * biasCount }
}

extension EncoderModel {
  /// Sets the precision of the GEMMs. bf16 rounds the linear layers' weights and biases (and LoRA's
  /// A and B) once, now, from the slab as it is: set it after loading or changing weights. A trainer
  /// then calls `refreshBF16Operands` after each update of trainable ones. bf16 needs a oneDNN that
  /// can compute it here (`OneDNN.computesBF16`).
  public func setPrecision(_ p: Precision) throws {
    if p == .bf16 {
      guard OneDNN.computesBF16 else {
        throw PETLError("--precision bf16: oneDNN \(OneDNN.version) cannot compute bf16 on this CPU (instruction set \(OneDNN.isa))"
          + (OneDNN.startError.map { ": \($0)" } ?? ""))
      }
      bf16 = BF16Operands(layout: layout, params: params)
    } else {
      bf16 = nil
    }
    precision = p
  }

  /// Re-rounds the bf16 copies of these slots (those a GEMM reads) after their fp32 values changed.
  public func refreshBF16Operands(slots: [Int]) {
    bf16?.refresh(slots: slots, layout: layout, params: params)
  }

  /// Slots of `plan` whose bf16 copies an update changes.
  public func bf16Slots(of plan: GradientPlan) -> [Int] {
    guard let bf16 else { return [] }
    return layout.slots.indices.filter { plan.trains($0) && bf16.holds($0) }
  }

  /// Bytes of the bf16 operand copies (0 in fp32).
  public var bf16OperandBytes: Int { bf16?.bytes ?? 0 }
}

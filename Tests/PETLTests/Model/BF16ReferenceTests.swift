import Foundation
import XCTest
@testable import PETLKernels
@testable import PETLModel
@testable import PETLTraining

/// `--precision bf16` against PyTorch 2.13's CPU autocast (reference/bf16_fixtures.py) on the four
/// tiny family checkpoints and on all-MiniLM-L6-v2, one RTE batch each, eval mode, every parameter
/// trainable; and against the engine's own fp32.
///
/// Tolerances, from bf16's 8-bit mantissa (a rounding moves a value by up to 2⁻⁹ of it) and from
/// what PyTorch's own bf16 does to the same numbers:
/// - Both sides round the same GEMM operands; PyTorch also rounds every GEMM's output (and the
///   weight gradients) to bf16, the engine keeps them fp32. So the two differ by about as much as
///   either differs from fp32, and no more: logits within 2x PyTorch's own max |bf16 − fp32| of the
///   batch; every gradient tensor within 2x PyTorch's own relative distance bf16-to-fp32 (L2 over the
///   sampled entries, per tensor) plus 1e-3 (the fp32 tests' tolerance: summation order).
/// - The engine's bf16 is no further from fp32 than autocast's: per tensor, its distance to the
///   engine's fp32 at most 1.5x PyTorch's distance plus 1e-3.
/// - The issue's bar: the gradient of every trainable set (each module type in all layers and in each
///   layer, the embeddings, the head, full) has cosine >= 0.999 to the engine's fp32 gradient, on
///   MiniLM and the tiny BERT and ELECTRA. The tiny RoBERTa and DistilBERT recipe checkpoints cannot
///   meet it in bf16: their [CLS] rows barely depend on the input, so their gradients are small
///   differences of large terms (Σ_b (p_b − y_b) · pooled_b over a balanced batch), which amplify a
///   2⁻⁹ operand rounding. Autocast's own gradients there are 17-25% (RoBERTa LayerNorms) and ~100%
///   (DistilBERT encoder) away from fp32, at cosines 0.91-0.98 (DistilBERT). For those two each
///   tensor's cosine defect 1 − cos to fp32 must be at most 2.25x autocast's (the fixture's
///   `bf16_vs_fp32_cosine`; 2.25 = 1.5², the distance rule above, as the defect goes with the
///   squared distance) plus 1e-4, and the measured set cosines are printed.
/// The key biases' true gradient is 0 (a softmax row is shift-invariant): both sides hold rounding
/// noise there, so the engine's must be no larger than 2x PyTorch's (and the set checks skip them).
final class BF16ReferenceTests: XCTestCase {
  static let dir = TestSupport.fixtures.appendingPathComponent("bf16")

  struct Case {
    let name: String
    let model: EncoderModel
    let batch: Batch
    let prefix: String
  }

  func cases() throws -> [Case] {
    var out: [Case] = []
    for family in FamilyReferenceTests.families {
      let folder = try FamilyFixtures.folder(family)
      defer { try? FileManager.default.removeItem(at: folder) }
      let (m, report) = try EncoderModel.load(directory: folder, numLabels: 2, seed: 1)
      FamilyFixtures.setHead(m, initialized: report.initialized)
      let batch = try TestSupport.packedBatch(try FamilyFixtures.reference(family))
      out.append(Case(name: family.rawValue, model: m, batch: batch, prefix: family.checkpointPrefix))
    }
    let (m, _) = try EncoderModel.load(directory: try TestSupport.requireModel(), numLabels: 2, seed: 1)
    try AdapterFile.load(ReferenceTests.dir.appendingPathComponent("head.safetensors"), into: m)
    let batch = try TestSupport.packedBatch(try SafeTensors.open(ReferenceTests.dir.appendingPathComponent("forward.safetensors")))
    out.append(Case(name: "minilm", model: m, batch: batch, prefix: "bert."))
    return out
  }

  /// Logits, loss and the full gradient slab of one eval forward/backward in `precision`.
  func run(_ c: Case, _ precision: Precision) throws -> (logits: [Float], loss: Double, grads: [Float], plan: GradientPlan) {
    try c.model.setPrecision(precision)
    let full = try TrainableSet(modules: [.full], layers: .all, layout: c.model.layout)
    let step = TrainingStep(model: c.model, trainable: full, optimizer: .sgd, weightDecay: 0, maxGradNorm: 0)
    let pass = c.model.forward(c.batch, ws: step.workspace, training: false)
    let loss = c.model.loss(c.batch, ws: step.workspace)
    c.model.backward(c.batch, ws: step.workspace, plan: full.plan, grads: step.grads, after: pass, training: false)
    return (Array(step.workspace.outputs(batch: c.batch.count)), loss, Array(UnsafeBufferPointer(start: step.grads, count: full.count)),
            full.plan)
  }

  /// The fixture's sample of a tensor of n entries: all, or floor(k n / 512) for k < 512.
  static func sample(_ n: Int) -> [Int] { n <= 512 ? Array(0..<n) : (0..<512).map { $0 * n / 512 } }

  static func relative(_ a: [Float], _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for i in a.indices { let d = Double(a[i]) - Double(b[i]); num += d * d; den += Double(b[i]) * Double(b[i]) }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
  }

  static func norm(_ a: [Float]) -> Double { a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

  static func isKeyBias(_ name: String) -> Bool { name.hasSuffix("attention.self.key.bias") || name.hasSuffix("attention.k_lin.bias") }

  func testAgainstPyTorchAutocast() throws {
    try BF16KernelTests.requireBF16()
    for c in try cases() {
      let st = try SafeTensors.open(Self.dir.appendingPathComponent("\(c.name).safetensors"))
      let info = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.dir.appendingPathComponent("\(c.name).json"))) as! [String: Any]
      let torchDistance = info["bf16_vs_fp32"] as! [String: Double]
      let b16 = try run(c, .bf16), f32 = try run(c, .fp32)
      // logits and loss
      let ref = try st.floats("logits")
      let logitTol = 2 * (info["logits_max_abs_bf16_vs_fp32"] as! Double)
      let worst = zip(b16.logits, ref).map { Double(abs($0 - $1)) }.max()!
      XCTAssertLessThanOrEqual(worst, logitTol, "\(c.name): logits max |Δ| \(worst)")
      XCTAssertNotEqual(b16.logits, f32.logits, "\(c.name): bf16 must not be fp32")
      XCTAssertEqual(b16.loss, Double(try st.floats("loss")[0]), accuracy: 2 * logitTol, "\(c.name): loss")
      // every gradient tensor
      let m = c.model
      for (i, slot) in m.layout.slots.enumerated() {
        guard case .full(let go) = b16.plan.targets[i] else { XCTFail("\(slot.name) frozen under full"); continue }
        let isWord = slot.name == "embeddings.word_embeddings.weight"
        let key = isWord ? "rowgrad." : "grad."
        let name = st.info(key + c.prefix + slot.name) != nil ? c.prefix + slot.name : slot.name
        var ours16: [Float] = [], ours32: [Float] = []
        if isWord {
          let E = m.dims.embedding
          for r in try st.integers("rows." + name) {
            ours16 += b16.grads[(go + Int(r) * E)..<(go + Int(r) * E + E)]
            ours32 += f32.grads[(go + Int(r) * E)..<(go + Int(r) * E + E)]
          }
        } else {
          ours16 = Array(b16.grads[go..<(go + slot.count)]); ours32 = Array(f32.grads[go..<(go + slot.count)])
        }
        let idx = Self.sample(ours16.count)
        let torch16 = try st.floats(key + name)
        let a = idx.map { ours16[$0] }, a32 = idx.map { ours32[$0] }
        XCTAssertEqual(torch16.count, a.count, "\(c.name): \(name) sample")
        guard let d = torchDistance[name] else { XCTFail("\(c.name): no distance for \(name)"); continue }
        if Self.isKeyBias(slot.name) {
          XCTAssertLessThanOrEqual(Self.norm(a), max(2 * Self.norm(torch16), 1e-7), "\(c.name): \(name) (true gradient 0)")
          continue
        }
        let vsTorch = Self.relative(a, torch16), vsFP32 = Self.relative(a, a32)
        XCTAssertLessThanOrEqual(vsTorch, 2 * d + 1e-3, "\(c.name): \(name) against autocast (autocast's own bf16-fp32: \(d))")
        XCTAssertLessThanOrEqual(vsFP32, 1.5 * d + 1e-3, "\(c.name): \(name) against fp32 (autocast's: \(d))")
      }
    }
  }

  /// The ill-conditioned recipe checkpoints (see the type's comment).
  static let conditionedByAutocast: Set<String> = ["roberta", "distilbert"]

  /// Cosine >= 0.999 between the engine's bf16 and fp32 gradients of every trainable set.
  func testEveryTrainableSetPointsLikeFP32() throws {
    try BF16KernelTests.requireBF16()
    for c in try cases() {
      let b16 = try run(c, .bf16), f32 = try run(c, .fp32)
      let m = c.model
      let exempt = Self.conditionedByAutocast.contains(c.name)
      if exempt {
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.dir.appendingPathComponent("\(c.name).json"))) as! [String: Any]
        let autocast = info["bf16_vs_fp32_cosine"] as! [String: Double]
        for (i, slot) in m.layout.slots.enumerated() where !Self.isKeyBias(slot.name) && slot.name != "embeddings.word_embeddings.weight" {
          guard case .full(let go) = b16.plan.targets[i] else { continue }
          let ours = BF16ModelTests.cosine(Array(b16.grads[go..<(go + slot.count)]), Array(f32.grads[go..<(go + slot.count)]))
          let name = autocast[c.prefix + slot.name] != nil ? c.prefix + slot.name : slot.name
          guard let theirs = autocast[name] else { XCTFail("\(c.name): no autocast cosine for \(name)"); continue }
          XCTAssertLessThanOrEqual(1 - ours, 2.25 * (1 - theirs) + 1e-4,
                                   "\(c.name): \(slot.name) cosine to fp32 \(ours), autocast's \(theirs)")
        }
      }
      var sets: [(String, [Int])] = [("full", Array(m.layout.slots.indices))]
      for module in ModuleKind.allCases {
        let slots = m.layout.slots.indices.filter { m.layout.slots[$0].module == module }
        guard !slots.isEmpty else { continue }
        sets.append(("\(module.rawValue)@all", slots))
        for l in 0..<m.dims.layers where module.isPerLayer {
          sets.append(("\(module.rawValue)@\(l)", slots.filter { m.layout.slots[$0].layer == l }))
        }
      }
      sets.append(("bias@all", m.layout.slots.indices.filter { m.layout.slots[$0].role == .bias }))
      sets.append(("layernorm@all", m.layout.slots.indices.filter { m.layout.slots[$0].module.isLayerNorm }))
      var lowest = (1.0, "")
      for (label, slots) in sets {
        var a: [Float] = [], b: [Float] = []
        for i in slots where !Self.isKeyBias(m.layout.slots[i].name) {
          guard case .full(let go) = b16.plan.targets[i] else { continue }
          let n = m.layout.slots[i].count
          a += b16.grads[go..<(go + n)]; b += f32.grads[go..<(go + n)]
        }
        guard !a.isEmpty else { continue }
        let cosine = BF16ModelTests.cosine(a, b)
        if cosine < lowest.0 { lowest = (cosine, label) }
        if !exempt { XCTAssertGreaterThanOrEqual(cosine, 0.999, "\(c.name): \(label) cosine bf16-fp32 \(cosine)") }
      }
      print("BF16ReferenceTests: \(c.name): lowest set cosine bf16-fp32 \(String(format: "%.5f", lowest.0)) (\(lowest.1))\(exempt ? ", exempt from 0.999" : "")")
    }
  }
}

import Foundation
import XCTest
@testable import PETLModel
@testable import PETLTraining

/// LoRA against PEFT 0.21.2 (reference/lora_fixtures.py; transformers 5.24, torch 2.13) on the four
/// tiny family checkpoints and on all-MiniLM-L6-v2, real RTE text, three target configurations per
/// family (query+value in all layers; key+attn_out in layer 0; intermediate+output in the last layer,
/// whose [CLS]-only rows then carry the adapters). A comes from the fixture (PEFT's initialisation), B
/// from the fixture too (nonzero: PEFT's zero B would leave A's gradient zero). Tolerances as the
/// family tests: logits 1e-4 absolute; every A, B and head gradient 1e-3 relative to that tensor's
/// L2 norm; one AdamW step's update 1e-3 relative to the update's L2 norm; frozen weights bit-identical.
final class LoRAReferenceTests: XCTestCase {
  static let models = ["bert", "electra", "distilbert", "roberta", "minilm"]

  typealias Case = LoRAFixtures.Case
  func cases(_ key: String) throws -> [Case] { try LoRAFixtures.cases(key) }

  func relativeError(_ a: UnsafePointer<Float>, _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for (i, r) in b.enumerated() { let d = Double(a[i] - r); num += d * d; den += Double(r) * Double(r) }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
  }

  func config(_ c: Case) -> String { String(c.name.split(separator: "/")[1]) }

  func testLogitsMatchPEFT() throws {
    for key in Self.models {
      for c in try cases(key) {
        let ref = try c.reference.floats("\(config(c)).logits")
        let ws = Workspace(dims: c.model.dims)
        for depth in [EncoderModel.ForwardDepth.logits, .logitsAllRows] {
          c.model.forward(c.batch, ws: ws, training: false, depth: depth)
          let worst = zip(ws.outputs(batch: c.batch.count), ref).map { abs($0 - $1) }.max()!
          XCTAssertLessThanOrEqual(worst, 1e-4, "\(c.name) \(depth): logits max |Δ| \(worst)")
        }
        XCTAssertEqual(c.model.loss(c.batch, ws: ws), c.info["loss"] as! Double, accuracy: 1e-5, c.name)
      }
    }
  }

  func testGradientsMatchPEFT() throws {
    for key in Self.models {
      for c in try cases(key) {
        let step = TrainingStep(model: c.model, trainable: c.set, optimizer: .sgd, weightDecay: 0, maxGradNorm: 0)
        let pass = c.model.forward(c.batch, ws: step.workspace, training: false)
        c.model.loss(c.batch, ws: step.workspace)
        c.model.backward(c.batch, ws: step.workspace, plan: c.set.plan, grads: step.grads, after: pass, training: false)
        for (i, s) in c.model.layout.slots.enumerated() {
          guard case .full(let g)? = c.set.plan.targets[i] else { continue }
          let ref = try c.reference.floats("\(config(c)).grad.\(s.name)")
          XCTAssertEqual(ref.count, s.count)
          XCTAssertGreaterThan(ref.map { $0 * $0 }.reduce(0, +), 0, "\(c.name): \(s.name) has a zero reference gradient")
          XCTAssertLessThan(relativeError(step.grads + g, ref), 1e-3, "\(c.name): \(s.name)")
        }
      }
    }
  }

  func testOneAdamWStepMatchesPEFT() throws {
    for key in Self.models {
      for c in try cases(key) {
        let before = c.model.snapshot()
        let step = TrainingStep(model: c.model, trainable: c.set, optimizer: .adamw, weightDecay: 0.01, maxGradNorm: 1)
        step.run(c.batch, lr: 1e-2, dropoutKey: 0, training: false)
        let norm = c.info["grad_norm_pre_clip"] as! Double
        XCTAssertEqual(step.lastGradNorm, norm, accuracy: 1e-3 * norm, "\(c.name): pre-clip norm")
        for name in c.set.plan.trainableNames {
          let s = c.model.layout.slot(named: name)!
          let ref = try c.reference.floats("\(config(c)).delta.\(name)")
          let delta = (0..<s.count).map { c.model.params[s.offset + $0] - before[s.offset + $0] }
          XCTAssertLessThan(relativeError(delta, ref), 1e-3, "\(c.name): \(name) update")
        }
        var changed = 0
        for (i, s) in c.model.layout.slots.enumerated() where c.set.plan.targets[i] == nil {
          for j in s.range where c.model.params[j].bitPattern != before[j].bitPattern { changed += 1 }
        }
        XCTAssertEqual(changed, 0, "\(c.name): frozen parameters changed")
      }
    }
  }
}

/// The committed PEFT LoRA fixtures (reference/lora_fixtures.py) as ready models: each configuration
/// of a model's fixture with the fixture's A and B in place.
enum LoRAFixtures {
  static let dir = TestSupport.fixtures.appendingPathComponent("lora")

  struct Case {
    let name: String
    let model: EncoderModel
    let set: TrainableSet
    let batch: Batch
    let reference: SafeTensors
    let info: [String: Any]
    /// The model the adapters were added to (no LoRA slots).
    let base: EncoderModel
  }

  /// Every configuration of `key`'s fixture on a fresh model with the fixture's A and B.
  static func cases(_ key: String) throws -> [Case] {
    let info = try JSONSerialization.jsonObject(with: Data(contentsOf: LoRAFixtures.dir.appendingPathComponent(key + ".json"))) as! [String: Any]
    let st = try SafeTensors.open(LoRAFixtures.dir.appendingPathComponent(key + ".safetensors"))
    let family: EncoderFamily = key == "minilm" ? .bert : EncoderFamily(rawValue: key)!
    let batch = try TestSupport.packedBatch(try FamilyFixtures.reference(family))
    let folder = key == "minilm" ? try TestSupport.requireModel() : try FamilyFixtures.folder(family)
    defer { if key != "minilm" { try? FileManager.default.removeItem(at: folder) } }
    let (base, report) = try EncoderModel.load(directory: folder, numLabels: 2, seed: 1)
    FamilyFixtures.setHead(base, initialized: report.initialized)
    var out: [Case] = []
    for (name, value) in info.sorted(by: { $0.key < $1.key }) {
      guard let c = value as? [String: Any], let kinds = c["kinds"] as? [String] else { continue }
      let layers = c["layers"] as! [Int]
      let spec = LoRASpec(rank: c["r"] as! Int, alpha: c["lora_alpha"] as! Double, dropout: 0,
                          kinds: kinds.map { ModuleKind(rawValue: $0)! }, layers: layers)
      let m = base.withLoRA(spec, seed: 0)
      for s in m.layout.slots where s.role.isLoRA {
        let values = try st.floats("\(name).\(s.role == .loraA ? "A" : "B").\(s.name)")
        XCTAssertEqual(values.count, s.count, "\(key)/\(name): \(s.name)")
        m.pointer(s).update(from: values, count: s.count)
      }
      let set = try TrainableSet(modules: kinds.map { TrainableModule(rawValue: $0)! }, layers: .indices(layers),
                                 layout: m.layout, method: .lora)
      XCTAssertEqual(set.plan.trainableNames.sorted(), (c["trainable"] as! [String]).sorted(), "\(key)/\(name): trainable set")
      out.append(Case(name: "\(key)/\(name)", model: m, set: set, batch: batch, reference: st, info: c, base: base))
    }
    XCTAssertGreaterThanOrEqual(out.count, 2, key)
    return out
  }
}

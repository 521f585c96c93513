import Foundation
import XCTest
@testable import PETLModel
@testable import PETLText
@testable import PETLTraining

/// Every encoder family against transformers 5.24 on tiny hub-layout checkpoints (BERT with its
/// pre-training heads, RoBERTa with `lm_head` and byte-level BPE, ELECTRA's discriminator with
/// embedding_size 16 != hidden 32, DistilBERT with its MLM head) and real RTE / STS-B text. The same
/// tolerances as the real-model ReferenceTests: logits 1e-4 absolute, every gradient tensor 1e-3
/// relative (L2), the AdamW update 1e-3 relative (L2 of the update, not of the parameter), mean-pooled
/// embeddings 1e-4 absolute.
final class FamilyReferenceTests: XCTestCase {
  static let families: [EncoderFamily] = [.bert, .electra, .distilbert, .roberta]

  struct Loaded {
    let model: EncoderModel
    let tokenizer: any Tokenizer
    let reference: SafeTensors
  }

  func load(_ family: EncoderFamily) throws -> Loaded {
    let folder = try FamilyFixtures.folder(family)
    defer { try? FileManager.default.removeItem(at: folder) }
    let config = try EncoderConfig.load(folder.appendingPathComponent("config.json"))
    XCTAssertEqual(config.family, family)
    let (m, report) = try EncoderModel.load(directory: folder, config: config, numLabels: 2, seed: 1)
    let (dense, out) = family.headPaths
    XCTAssertEqual(report.initialized, family.hasPooler ? [out] : [dense, out], "\(family): fresh head")
    FamilyFixtures.setHead(m, initialized: report.initialized)
    let tokenizer = try loadTokenizer(modelDirectory: folder, config: config)
    return Loaded(model: m, tokenizer: tokenizer, reference: try FamilyFixtures.reference(family))
  }

  /// The checkpoint's tensor for one of our slots: the saved name carries the family prefix, the
  /// head's names do not.
  func referenceName(_ slot: String, _ family: EncoderFamily, _ st: SafeTensors, key: String) -> String {
    st.info(key + family.checkpointPrefix + slot) != nil ? family.checkpointPrefix + slot : slot
  }

  func relativeError(_ a: UnsafePointer<Float>, _ b: [Float]) -> Double {
    var num = 0.0, den = 0.0
    for (i, r) in b.enumerated() { let d = Double(a[i] - r); num += d * d; den += Double(r) * Double(r) }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
  }

  /// Every loaded tensor is the recipe's value of its prefixed checkpoint name (the loader maps
  /// names, skips the pre-training heads, and reads nothing else).
  func testCheckpointsLoadByName() throws {
    for family in Self.families {
      let l = try load(family)
      let saved = Set(((try FamilyFixtures.json(family, "layout.json"))["tensors"] as! [[String: Any]]).map { $0["name"] as! String })
      for s in l.model.layout.slots {
        let name = saved.contains(family.checkpointPrefix + s.name) ? family.checkpointPrefix + s.name : s.name
        let expected = FamilyFixtures.recipe(name, count: s.count)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: l.model.pointer(s), count: s.count)), expected, "\(family): \(s.name)")
      }
    }
  }

  /// Our tokenizer gives transformers' ids for the reference batch (pairs) and the embedding batch
  /// (single sentences); the token types where the family's tokenizer returns them.
  func testTokenizerIdsMatch() throws {
    for family in Self.families {
      let l = try load(family)
      let info = try FamilyFixtures.json(family, "fixture.json")
      let pairs = ((info["batch"] as! [String: Any])["examples"] as! [[String: Any]]).map { [$0["sentence1"] as! String, $0["sentence2"] as! String] }
      let singles = (info["embed"] as! [String: Any])["sentences"] as! [String]
      for (prefix, texts) in [("", pairs), ("embed.", singles.map { [$0] })] {
        let b = try TestSupport.packedBatch(l.reference, prefix: prefix, labels: false)
        let hasTypes = l.reference.info(prefix + "token_type_ids") != nil
        for (i, t) in texts.enumerated() {
          let e = l.tokenizer.encode(t[0], t.count > 1 ? t[1] : nil, maxLength: 64)
          let o = b.offsets[i], n = b.offsets[i + 1] - o
          XCTAssertEqual(e.inputIds, Array(b.inputIds[o..<(o + n)]), "\(family) \(prefix)row \(i)")
          if hasTypes { XCTAssertEqual(e.tokenTypeIds, Array(b.tokenTypes[o..<(o + n)]), "\(family) \(prefix)row \(i) types") }
        }
      }
    }
  }

  func testLogitsAndLossMatch() throws {
    for family in Self.families {
      let l = try load(family)
      let b = try TestSupport.packedBatch(l.reference)
      let ws = Workspace(dims: l.model.dims)
      l.model.forward(b, ws: ws, training: false)
      let loss = l.model.loss(b, ws: ws)
      let ref = try l.reference.floats("logits")
      let ours = ws.outputs(batch: b.count)
      let worst = zip(ours, ref).map { abs($0 - $1) }.max()!
      XCTAssertLessThanOrEqual(worst, 1e-4, "\(family): logits max |Δ| \(worst)")
      XCTAssertEqual(loss, Double(try l.reference.floats("loss")[0]), accuracy: 1e-5, "\(family): loss")
      // every slot is read by the forward: the all-rows last layer gives the same logits
      l.model.forward(b, ws: ws, training: false, depth: .logitsAllRows)
      XCTAssertLessThanOrEqual(zip(ws.outputs(batch: b.count), ref).map { abs($0 - $1) }.max()!, 1e-4, "\(family): all rows")
    }
  }

  func testEveryGradientMatches() throws {
    for family in Self.families {
      let l = try load(family)
      let m = l.model, st = l.reference
      let b = try TestSupport.packedBatch(st)
      let full = try TrainableSet(modules: [.full], layers: .all, layout: m.layout)
      let step = TrainingStep(model: m, trainable: full, optimizer: .sgd, weightDecay: 0, maxGradNorm: 0)
      let pass = m.forward(b, ws: step.workspace, training: false)
      m.loss(b, ws: step.workspace)
      m.backward(b, ws: step.workspace, plan: full.plan, grads: step.grads, after: pass, training: false)
      var checked = 0
      for (i, slot) in m.layout.slots.enumerated() {
        guard case .full(let go) = full.plan.targets[i] else { XCTFail("\(slot.name) frozen under full"); continue }
        let isWord = slot.name == "embeddings.word_embeddings.weight"
        let name = referenceName(slot.name, family, st, key: isWord ? "rows." : "grad.")
        if isWord {
          let rows = try st.integers("rows.\(name)"), ref = try st.floats("rowgrad.\(name)")
          let E = m.dims.embedding
          var ours: [Float] = []
          for r in rows { ours += UnsafeBufferPointer(start: step.grads + go + Int(r) * E, count: E) }
          XCTAssertLessThan(relativeError(ours, ref), 1e-3, "\(family): \(slot.name) rows")
          checked += 1
          continue
        }
        let ref = try st.floats("grad.\(name)")
        XCTAssertEqual(ref.count, slot.count, "\(family): \(name)")
        // The key bias shifts every score of a softmax row equally: its true gradient is 0, both
        // sides hold float noise. Require ours to be noise too.
        if slot.name.hasSuffix("attention.self.key.bias") || slot.name.hasSuffix("attention.k_lin.bias") {
          let norm = (0..<slot.count).reduce(0.0) { $0 + Double(step.grads[go + $1] * step.grads[go + $1]) }.squareRoot()
          XCTAssertLessThan(norm, 1e-6, "\(family): \(slot.name) should be ~0")
        } else {
          XCTAssertLessThan(relativeError(step.grads + go, ref), 1e-3, "\(family): \(slot.name)")
        }
        checked += 1
      }
      XCTAssertEqual(checked, m.layout.slots.count, "\(family)")
    }
  }

  /// One AdamW step (lr 1e-2, weight decay 0.01 on weights, clipping at 1) of the study's LayerNorm
  /// set with the head: the update of every trainable tensor to 1e-3 relative, the pre-clip norm to
  /// 1e-3 relative, and every frozen parameter bit-identical.
  func testOneAdamWStepMatches() throws {
    for family in Self.families {
      let l = try load(family)
      let m = l.model, st = l.reference
      let info = (try FamilyFixtures.json(family, "fixture.json"))["adamw"] as! [String: Any]
      let b = try TestSupport.packedBatch(st)
      let before = m.snapshot()
      let set = try TrainableSet(modules: [.layernorm], layers: .all, layout: m.layout)
      let step = TrainingStep(model: m, trainable: set, optimizer: .adamw, weightDecay: 0.01, maxGradNorm: 1)
      let loss = step.run(b, lr: 1e-2, dropoutKey: 0, training: false)
      XCTAssertEqual(loss, info["loss"] as! Double, accuracy: 1e-5, "\(family)")
      let norm = info["grad_norm_pre_clip"] as! Double
      XCTAssertEqual(step.lastGradNorm, norm, accuracy: 1e-3 * norm, "\(family): pre-clip norm")
      let expected = Set((info["trainable"] as! [String]).map {
        $0.hasPrefix(family.checkpointPrefix) ? String($0.dropFirst(family.checkpointPrefix.count)) : $0
      })
      XCTAssertEqual(Set(set.plan.trainableNames), expected, "\(family): trainable set")
      for name in set.plan.trainableNames {
        let slot = m.layout.slot(named: name)!
        let ref = try st.floats("adamw.delta.\(referenceName(name, family, st, key: "adamw.delta."))")
        let delta = (0..<slot.count).map { m.params[slot.offset + $0] - before[slot.offset + $0] }
        XCTAssertLessThan(relativeError(delta, ref), 1e-3, "\(family): \(name) update")
      }
      var changedFrozen = 0
      for (i, slot) in m.layout.slots.enumerated() where set.plan.targets[i] == nil {
        for j in slot.range where m.params[j].bitPattern != before[j].bitPattern { changedFrozen += 1 }
      }
      XCTAssertEqual(changedFrozen, 0, "\(family): frozen parameters changed")
    }
  }

  /// `embed`: the mean of the last hidden states over the real tokens, L2-normalised (the fixture
  /// holds the plain mean; normalised here).
  func testSentenceEmbeddingsMatch() throws {
    for family in Self.families {
      let l = try load(family)
      let b = try TestSupport.packedBatch(l.reference, prefix: "embed.", labels: false)
      let ours = l.model.embed(b, ws: Workspace(dims: l.model.dims))
      let ref = try l.reference.floats("embed.embeddings"), H = l.model.dims.hidden
      var worst: Float = 0
      for i in 0..<b.count {
        let row = Array(ref[(i * H)..<((i + 1) * H)])
        let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for c in 0..<H { worst = max(worst, abs(ours[i][c] - row[c] / norm)) }
      }
      XCTAssertLessThanOrEqual(worst, 1e-4, "\(family): embeddings max |Δ| \(worst)")
    }
  }
}

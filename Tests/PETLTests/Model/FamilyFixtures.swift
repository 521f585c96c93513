import Foundation
import XCTest
@testable import PETLModel

/// The tiny hub-layout checkpoints of every encoder family (reference/family_fixtures.py): no
/// weights are committed, only each folder's `config.json`, the tensor list `save_pretrained` wrote
/// (`layout.json`) and transformers' outputs. The weights are a recipe both sides compute (`recipe`),
/// so `folder(_:)` rebuilds the checkpoint exactly as transformers saved it, prefix and pre-training
/// head included, with the tokenizer files its family ships.
enum FamilyFixtures {
  static let dir = TestSupport.fixtures.appendingPathComponent("families")

  /// The fixture's deterministic values for a tensor: FNV-1a 64 of the name, plus the flat index,
  /// through splitmix64, to a uniform in [-1, 1) scaled by the tensor's role (LayerNorm gains around
  /// 1, biases small, weights and tables up to 0.08). Exactly `recipe()` in family_fixtures.py.
  static func recipe(_ name: String, count: Int) -> [Float] {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in name.utf8 { h ^= UInt64(b); h = h &* 0x100_0000_01b3 }
    let (center, scale): (Double, Double) =
      name.hasSuffix("LayerNorm.weight") || name.hasSuffix("layer_norm.weight") ? (1, 0.2)
      : name.hasSuffix(".bias") ? (0, 0.05) : (0, 0.08)
    return (0..<count).map { i in
      var z = h &+ UInt64(i)
      z = z &+ 0x9E37_79B9_7F4A_7C15
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      z ^= z >> 31
      let u = Double(z >> 11) * 0x1p-53
      return Float(center + scale * (2 * u - 1))
    }
  }

  static func json(_ family: EncoderFamily, _ file: String) throws -> [String: Any] {
    let url = dir.appendingPathComponent(family.rawValue).appendingPathComponent(file)
    return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
  }

  static func reference(_ family: EncoderFamily) throws -> SafeTensors {
    try SafeTensors.open(dir.appendingPathComponent(family.rawValue).appendingPathComponent("reference.safetensors"))
  }

  /// A hub folder of `family` under a fresh temporary directory: config.json, model.safetensors from
  /// the recipe in the saved order and names, and the tokenizer files (WordPiece: the real model's
  /// vocab.txt and tokenizer_config.json; RoBERTa: the BPE vocabulary of Tests/Fixtures/bpe).
  static func folder(_ family: EncoderFamily, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("petl-\(family.rawValue)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
    let src = dir.appendingPathComponent(family.rawValue)
    try FileManager.default.copyItem(at: src.appendingPathComponent("config.json"), to: out.appendingPathComponent("config.json"))
    let tensors = (try json(family, "layout.json"))["tensors"] as! [[String: Any]]
    var values: [[Float]] = []
    var named: [(String, [Int])] = []
    for t in tensors {
      let name = t["name"] as! String, shape = t["shape"] as! [Int]
      XCTAssertEqual(t["dtype"] as? String, "F32", name, file: file, line: line)
      named.append((name, shape))
      values.append(recipe(name, count: shape.reduce(1, *)))
    }
    try withBuffers(values) { buffers in
      try SafeTensors.write(to: out.appendingPathComponent("model.safetensors"),
                                  tensors: zip(named, buffers).map { ($0.0.0, $0.0.1, $0.1) }, metadata: ["format": "pt"])
    }
    let files: [(URL, String)]
    switch family.tokenizer {
    case .wordPiece:
      let model = try TestSupport.requireModel(file: file, line: line)
      files = [(model, "vocab.txt"), (model, "tokenizer_config.json")]
    case .byteLevelBPE:
      let bpe = TestSupport.fixtures.appendingPathComponent("bpe")
      files = [(bpe, "vocab.json"), (bpe, "merges.txt")]
    }
    for (from, name) in files {
      try FileManager.default.copyItem(at: from.appendingPathComponent(name), to: out.appendingPathComponent(name))
    }
    return out
  }

  /// The recipe's values for the head tensors transformers initialised (the fixture overwrote them
  /// the same way), so both sides classify with the same head.
  static func setHead(_ m: EncoderModel, initialized: [String]) {
    for s in m.layout.slots where initialized.contains(m.layout.modulePath(of: s)) {
      let v = recipe(s.name, count: s.count)
      m.pointer(s).update(from: v, count: s.count)
    }
  }

  static func withBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) throws -> R {
    var pointers: [UnsafeMutableBufferPointer<Float>] = []
    defer { pointers.forEach { $0.deallocate() } }
    for a in arrays {
      let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: a.count)
      _ = p.initialize(from: a)
      pointers.append(p)
    }
    return try body(pointers.map { UnsafeBufferPointer($0) })
  }
}

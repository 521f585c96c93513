import Foundation
import XCTest
@testable import PETLModel
@testable import PETLText
import PETLSupport

/// config.json and the WordPiece tokenizer files read as transformers 5 reads them: every case of
/// `reference/config_fixtures.py` (each field this engine reads, in every family, set to floats,
/// exponents, null, strings, booleans, negatives, huge integers, NaN, left out or given twice; and
/// unusual tokenizer_config.json flags and vocab.txt lines) is read to the value transformers read,
/// or refused in one line naming the key: where transformers refuses, always; where it accepts, only
/// for a limit of this engine (a size that must be positive or fit the machine, a probability in
/// [0, 1), a family feature not computed), never for a reading of its own.
final class ConfigFidelityTests: XCTestCase {
  static let dir = TestSupport.fixtures.appendingPathComponent("config")

  /// Why this engine may refuse what transformers' config accepts (its model would fail or differ).
  static let engineLimits = ["must be positive", "is not divisible by", "must be in [0, 1)", "positive and finite",
                             "more than this machine's", "overflows", "beyond any size this machine can hold",
                             "is outside the vocabulary", "leaves no positions", "is not supported", "is null; RoBERTa"]

  /// The line-based edit of `config_fixtures.edited()`.
  static func edited(_ text: String, key: String, literal: String) -> String {
    var lines = text.components(separatedBy: "\n")
    let at = lines.firstIndex { $0.hasPrefix("  \"\(key)\": ") }
    if literal.hasPrefix("<") {
      if let i = at {
        if !lines[i].hasSuffix(",") { lines[i - 1].removeLast() }
        lines.remove(at: i)
      }
      if literal.hasPrefix("<repeated ") {
        let values = literal.dropFirst("<repeated ".count).dropLast().components(separatedBy: " then ")
        lines.insert(contentsOf: values.map { "  \"\(key)\": \($0)," }, at: 1)
      }
      return lines.joined(separator: "\n")
    }
    if let i = at {
      lines[i] = "  \"\(key)\": \(literal)" + (lines[i].hasSuffix(",") ? "," : "")
    } else {
      lines.insert("  \"\(key)\": \(literal),", at: 1)
    }
    return lines.joined(separator: "\n")
  }

  /// The field `key` names, as transformers' attribute would hold it.
  static func value(_ c: EncoderConfig, _ key: String) -> Any? {
    switch key {
    case "vocab_size": return c.vocabSize
    case "hidden_size", "dim": return c.hiddenSize
    case "num_hidden_layers", "n_layers": return c.numHiddenLayers
    case "num_attention_heads", "n_heads": return c.numAttentionHeads
    case "intermediate_size", "hidden_dim": return c.intermediateSize
    case "max_position_embeddings": return c.maxPositionEmbeddings
    case "type_vocab_size": return c.typeVocabSize
    case "embedding_size": return c.embeddingSize
    case "pad_token_id": return c.padTokenId
    case "layer_norm_eps": return c.layerNormEps
    case "hidden_dropout_prob", "dropout": return c.hiddenDropoutProb
    case "attention_probs_dropout_prob", "attention_dropout": return c.attentionProbsDropoutProb
    case "classifier_dropout", "seq_classif_dropout": return c.classifierDropout
    case "hidden_act", "activation": return c.hiddenAct.rawValue
    case "sinusoidal_pos_embds": return false  // true is refused
    default: return "unknown key"
    }
  }

  static func same(_ ours: Any?, _ theirs: Any, family: String, key: String) -> Bool {
    switch (ours, theirs) {
    case (nil, is NSNull): return true
    // pad_token_id null: no padding id; this engine reads it only for RoBERTa's positions (refused there).
    case (let o as Int, is NSNull) where key == "pad_token_id" && family != "roberta": return o == 0
    case (let o as String, let t as String): return o == t
    case (let o as Bool, let t as NSNumber): return o == t.boolValue
    case (let o as Int, let t as NSNumber): return Double(o) == t.doubleValue
    case (let o as Double, let t as NSNumber): return o == t.doubleValue
    default: return false
    }
  }

  func testConfigFieldsReadAsTransformersReadsThem() throws {
    let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.dir.appendingPathComponent("config-cases.json"))) as! [String: Any]
    let cases = fixture["cases"] as! [[String: Any]]
    XCTAssertEqual(cases.count, 936)
    let folder = try temporaryFolder("config-fidelity")
    let url = folder.appendingPathComponent("config.json")
    var read = 0, refusedToo = 0, limits = 0
    for c in cases {
      let family = c["family"] as! String, key = c["key"] as! String, literal = c["literal"] as! String
      let base = try String(contentsOf: FamilyFixtures.dir.appendingPathComponent(family).appendingPathComponent("config.json"), encoding: .utf8)
      try Self.edited(base, key: key, literal: literal).write(to: url, atomically: false, encoding: .utf8)
      let label = "\(family) \(key) = \(literal)"
      do {
        let config = try EncoderConfig.load(url)
        guard let theirs = c["value"] else { XCTFail("\(label): transformers refuses (\(c["error"]!)), read here"); continue }
        XCTAssertTrue(Self.same(Self.value(config, key), theirs, family: family, key: key),
                      "\(label): read \(String(describing: Self.value(config, key))), transformers \(theirs)")
        read += 1
      } catch {
        let message = "\(error)"
        XCTAssertTrue(message.hasPrefix(url.path + ": "), "\(label): \(message)")
        XCTAssertTrue(message.contains(key), "\(label): the message does not name the key: \(message)")
        XCTAssertFalse(message.contains("\n"), label)
        if c["error"] != nil { refusedToo += 1; continue }
        XCTAssertTrue(Self.engineLimits.contains { message.contains($0) }, "\(label): transformers reads \(c["value"]!), refused here: \(message)")
        limits += 1
      }
    }
    // Every kind of outcome occurs (the fixture is not degenerate).
    XCTAssertGreaterThan(read, 150)
    XCTAssertGreaterThan(refusedToo, 400)
    XCTAssertGreaterThan(limits, 50)
  }

  /// tokenizer_config.json flags and vocab.txt lines: the ids of the probe text are transformers',
  /// or the files are refused in one line where transformers refuses them, or would give an id past
  /// the embedding table (a BOM turns "[PAD]" into a new token), or names special tokens other than
  /// BERT's.
  func testTokenizerFilesReadAsTransformersReadsThem() throws {
    let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.dir.appendingPathComponent("tokenizer-cases.json"))) as! [String: Any]
    let probe = fixture["probe"] as! String
    let cases = fixture["cases"] as! [[String: Any]]
    XCTAssertEqual(cases.count, 29)
    let model = try TestSupport.requireModel()
    let vocab = try Data(contentsOf: model.appendingPathComponent("vocab.txt"))
    for c in cases {
      let folder = try temporaryFolder("tokenizer-fidelity")
      try FileManager.default.copyItem(at: model.appendingPathComponent("config.json"), to: folder.appendingPathComponent("config.json"))
      try (c["tokenizer_config"] as! String).write(to: folder.appendingPathComponent("tokenizer_config.json"), atomically: false, encoding: .utf8)
      var bytes = [UInt8](vocab)
      if let edit = c["vocab_edit"] as? [String: Any] {
        if edit["crlf"] != nil {
          bytes = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\n", with: "\r\n").utf8)
        } else if let prefix = edit["prefix"] as? String {
          bytes = Self.hex(prefix) + bytes
        } else {
          var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
          lines[edit["line"] as! Int] = Self.hex(edit["bytes"] as! String)
          bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
        }
      }
      try Data(bytes).write(to: folder.appendingPathComponent("vocab.txt"))
      let label = "\(c["tokenizer_config"]!) \(String(describing: c["vocab_edit"]))"
      do {
        let t = try BertTokenizer(modelDirectory: folder)
        guard let ids = c["ids"] as? [Int] else { XCTFail("\(label): transformers refuses (\(c["error"]!)), read here"); continue }
        XCTAssertEqual(t.encode(probe, maxLength: 512).inputIds.map(Int.init), ids, label)
      } catch {
        let message = "\(error)"
        XCTAssertTrue(message.hasPrefix(folder.path), "\(label): \(message)")
        XCTAssertFalse(message.contains("\n"), label)
        XCTAssertTrue(c["error"] != nil || message.contains("vocabulary has no [PAD] token") || message.contains("is not supported"),
                      "\(label): refused here: \(message)")
      }
    }
  }

  static func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
      let j = s.index(i, offsetBy: 2)
      out.append(UInt8(s[i..<j], radix: 16)!)
      i = j
    }
    return out
  }
}

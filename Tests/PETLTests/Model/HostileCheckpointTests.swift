import Foundation
import XCTest
@testable import PETLModel
import PETLSupport

/// Model folders whose sizes lie: every size is checked against the others and the machine before
/// anything is allocated (the two crashes of issue 23: a DistilBERT `hidden_dim` of 1e12, an
/// ELECTRA `vocab_size` of 2^31), tensors in layers past the config are refused, and the load
/// summary lists what transformers' load report lists.
final class HostileCheckpointTests: XCTestCase {
  /// The family's fixture folder with `config.json` edited as text (`ConfigFidelityTests.edited`).
  private func folder(_ family: EncoderFamily, _ edits: [(String, String)] = []) throws -> URL {
    let dir = try FamilyFixtures.folder(family)
    addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("config.json")
    var text = try String(contentsOf: url, encoding: .utf8)
    for (key, literal) in edits { text = ConfigFidelityTests.edited(text, key: key, literal: literal) }
    try text.write(to: url, atomically: false, encoding: .utf8)
    return dir
  }

  private func assertLoadFails(_ dir: URL, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try EncoderModel.load(directory: dir, numLabels: 2), file: file, line: line) {
      XCTAssertEqual("\($0)".replacingOccurrences(of: dir.path, with: "M"), expected, file: file, line: line)
    }
  }

  func testSizesAreCheckedBeforeAnythingIsAllocated() throws {
    // The two crashes of the issue: a float where transformers wants an int, then the same size as an int.
    assertLoadFails(try folder(.distilbert, [("hidden_dim", "1e12")]),
                    "M/config.json: field 'hidden_dim' must be an integer, got 1e12 (transformers refuses it too)")
    XCTAssertThrowsError(try EncoderModel.load(directory: try folder(.distilbert, [("hidden_dim", "1000000000000")]), numLabels: 2)) {
      XCTAssertTrue("\($0)".contains("config.json: the parameters need 520000 GB, more than this machine's "), "\($0)")
      XCTAssertTrue("\($0)".hasSuffix("(largest: n_layers 2 x hidden_dim 1000000000000 x dim 32 (feed-forward in))"), "\($0)")
    }
    XCTAssertThrowsError(try EncoderModel.load(directory: try folder(.electra, [("vocab_size", "2147483648")]), numLabels: 2)) {
      XCTAssertTrue("\($0)".contains("(largest: vocab_size 2147483648 x embedding_size 16 (word embeddings))"), "\($0)")
    }
    // Within the machine, the checkpoint's header is the judge, before the slab exists.
    assertLoadFails(try folder(.electra, [("vocab_size", "300000")]),
                    "M/model.safetensors: tensor 'electra.embeddings.word_embeddings.weight' has shape [30522, 16], config.json implies [300000, 16]")
    assertLoadFails(try folder(.bert, [("num_hidden_layers", "9223372036854775807")]),
                    "M/config.json: num_hidden_layers 9223372036854775807 x hidden_size 32 x hidden_size 32 (attention) overflows: no machine can hold it")
    assertLoadFails(try folder(.bert, [("vocab_size", "99999999999999999999")]),
                    "M/config.json: field 'vocab_size' is 99999999999999999999, beyond any size this machine can hold")
    assertLoadFails(try folder(.roberta, [("num_hidden_layers", "1000")]),
                    "M/config.json: num_hidden_layers 1000, but M/model.safetensors holds layers 0-1 only")
    // A task's label count sizes the head: checked the same way.
    let dir = try folder(.bert)
    XCTAssertThrowsError(try EncoderModel.load(directory: dir, numLabels: Int.max / 8)) {
      XCTAssertTrue("\($0)".contains("labels x hidden_size 32 (classifier) overflows"), "\($0)")
    }
  }

  /// A tensor in a layer the config does not have means the weights and config are not one model
  /// (transformers would only list it as unexpected): refused in one line, before the layout.
  func testTensorsInLayersPastTheConfigAreRefused() throws {
    for (index, family) in [("99999999999999999999", EncoderFamily.bert), ("2", .distilbert)] {
      let dir = try folder(family)
      let file = dir.appendingPathComponent("model.safetensors")
      let st = try SafeTensors.open(file)
      let base = family == .distilbert ? "transformer" : "encoder"
      let extra = "\(family.checkpointPrefix)\(base).layer.\(index).output.dense.bias"
      let values = try st.names.map { try st.floats($0) }
      try FamilyFixtures.withBuffers(values + [[0.5]]) { buffers in
        let tensors = zip(st.names, buffers).map { ($0, st.info($0)!.shape, $1) } + [(extra, [1], buffers.last!)]
        try SafeTensors.write(to: file, tensors: tensors, metadata: [:])
      }
      let layers = family == .distilbert ? "n_layers" : "num_hidden_layers"
      assertLoadFails(dir, "M/model.safetensors: tensor '\(extra)' is in layer \(index), but M/config.json has \(layers) 2 (layers 0-1)")
    }
  }

  /// What the file holds beyond the model and what it lacks, as transformers' load report lists them
  /// (`reference/config_fixtures.py`, load-reports.json), in one line with the names grouped.
  func testLoadSummaryListsWhatTransformersReports() throws {
    let reports = (try JSONSerialization.jsonObject(with: Data(contentsOf: ConfigFidelityTests.dir.appendingPathComponent("load-reports.json")))
      as! [String: Any])["families"] as! [String: [String: [String]]]
    for family in EncoderFamily.allCases {
      let dir = try folder(family)
      let config = try EncoderConfig.load(dir.appendingPathComponent("config.json"))
      let plan = try CheckpointPlan(directory: dir, config: config, dims: ModelDims(config: config, numLabels: 2))
      XCTAssertEqual(plan.unexpected.sorted(), reports[family.rawValue]!["unexpected"], "\(family)")
      let missing = zip(plan.layout.slots, plan.sources).filter { $0.1 == nil }.map { family.sequenceClassificationName($0.0.name) }
      XCTAssertEqual(missing.sorted(), reports[family.rawValue]!["missing"], "\(family)")
    }
    let bert = try folder(.bert)
    let (_, report) = try EncoderModel.load(directory: bert, numLabels: 2)
    XCTAssertEqual(report.summary?.replacingOccurrences(of: bert.path, with: "M"),
                   "M/model.safetensors: 39 tensors loaded; 7 unexpected, not used (cls.predictions.bias, "
                   + "cls.predictions.transform.LayerNorm.* 2, cls.predictions.transform.dense.* 2, cls.seq_relationship.* 2); "
                   + "2 missing, initialised (classifier.* 2)")
    XCTAssertEqual(CheckpointPlan.grouped((0..<12).map { "encoder.layer.\($0).attention.self.query.weight" } + ["a", "b.c", "d.e", "f.g"]),
                   "encoder.layer.*.attention.self.query.* 12, a, b.c, d.e, and 1 more groups")
  }

  /// Header values the Rust library refuses (serde's usize): floats and exponents in shapes and
  /// offsets; a tensor named twice keeps its last entry, and the first one's bytes are then
  /// undescribed.
  func testHeaderNumbersAreReadAsTheRustLibraryReadsThem() throws {
    let dir = try temporaryFolder("hostile-header")
    func file(_ header: String, dataBytes: Int) throws -> URL {
      let url = dir.appendingPathComponent("\(UUID().uuidString).safetensors")
      var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) }
      bytes += Array(header.utf8) + [UInt8](repeating: 0, count: dataBytes)
      try Data(bytes).write(to: url)
      return url
    }
    func fails(_ header: String, _ dataBytes: Int, _ expected: String) throws {
      let url = try file(header, dataBytes: dataBytes)
      XCTAssertThrowsError(try SafeTensors.open(url)) { XCTAssertEqual("\($0)", "\(url.path): \(expected)") }
    }
    try fails(#"{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}"#, 4,
              "tensor 'a' header entry is malformed ('shape' must be an array of non-negative integers, found a number 1e0)")
    try fails(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}"#, 4,
              "tensor 'a' header entry is malformed ('data_offsets' must be an array of non-negative integers, found a number 4.0)")
    try fails(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8,
              "4 unused bytes before tensor 'a' at byte 4")
    try fails(#"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#, 4,
              "tensor 'a' header entry is malformed ('shape' must be an array of non-negative integers, found a number 99999999999999999999)")
    let long = String(repeating: "n", count: 5000)
    try fails(#"{"\#(long)":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 4,
              "tensor '\(shown(long))' holds 4 bytes but shape [2] of F32 needs 8")
    XCTAssertEqual(try SafeTensors.open(try file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}"#, dataBytes: 4)).names, ["a"],
                   "other members of an entry are ignored, as serde does")
  }
}

import Foundation
import XCTest
@testable import PETLModel

/// `swift-petl export` as a user runs it, against what transformers 5.24 and peft 0.21.2 did with the
/// same export (reference/export_fixtures.py, `ExportFixture`): on each family's tiny checkpoint with
/// the fixture's recipe adapter, the exported tensor names are the ones transformers loads with no
/// missing or unexpected key, config.json keeps every member as written and adds the label fields
/// transformers read, the tokenizer files come along, the PEFT folder has PEFT's keys and config, and
/// `predict` on the full dev set gives transformers' logits on the export (1e-4) and the same bytes
/// whether it reads the export or the checkpoint plus adapter.
final class ExportTests: XCTestCase {
  static let env = ["OPENBLAS_NUM_THREADS": "1"]
  /// The members export sets (ExportConfig.members); every other one must come through as written.
  static let setKeys: Set<String> = ["architectures", "id2label", "label2id", "problem_type", "num_labels", "dtype", "torch_dtype"]

  func testExportMatchesTransformersForEveryFamily() throws {
    guard FileManager.default.fileExists(atPath: TestSupport.glueDir.appendingPathComponent("RTE/dev.tsv").path) else {
      return XCTFail("\(TestSupport.glueDir.path)/RTE missing")
    }
    for name in ExportFixture.cases { try check(try ExportFixture(name)) }
  }

  func check(_ fx: ExportFixture) throws {
    let c = fx.name
    let model = try FamilyFixtures.folder(fx.family)
    addTeardownBlock { try? FileManager.default.removeItem(at: model) }
    let work = try temporaryFolder("petl-export-\(c)")
    let adapter = work.appendingPathComponent("adapter.safetensors")
    try fx.writeAdapter(to: adapter)
    let out = work.appendingPathComponent("export")
    let export = try run(["export", "--model", model.path, "--adapter", adapter.path, "--task", fx.task,
                          "--output", out.path, "--peft"])
    XCTAssertEqual(export.status, 0, "\(c): \(export.output)")
    XCTAssertTrue(export.output.contains("exported: \(out.path) (\(fx.family.sequenceClassificationClass)"), "\(c): \(export.output)")

    // The tensors: exactly the names transformers' model has (and save_pretrained writes).
    let e = fx.section("export")
    let st = try SafeTensors.open(out.appendingPathComponent("model.safetensors"))
    XCTAssertEqual(st.names.sorted(), e["tensor_names"] as! [String], c)
    XCTAssertEqual(st.metadata["format"], "pt", c)

    // config.json: the original members byte for byte, plus the label fields as transformers read them.
    let originalData = try Data(contentsOf: model.appendingPathComponent("config.json"))
    let exportedData = try Data(contentsOf: out.appendingPathComponent("config.json"))
    let original = try JSONObjectText(originalData, path: "original")
    let exported = try JSONObjectText(exportedData, path: "exported")
    let kept = original.members.filter { !Self.setKeys.contains($0.key) }
    XCTAssertEqual(kept.map(\.key).sorted(), e["config_kept"] as! [String], c)
    for m in kept {
      XCTAssertEqual(exported.members.first { $0.key == m.key }?.text, m.text, "\(c): config member \(m.key)")
    }
    let setFields = e["config_set"] as! [String: Any]
    XCTAssertEqual(Set(exported.members.map(\.key)), Set(kept.map(\.key)).union(setFields.keys), c)
    let exportedObject = try JSONSerialization.jsonObject(with: exportedData) as! [String: Any]
    let exportedSet = exportedObject.filter { setFields.keys.contains($0.key) }
    XCTAssertEqual(try canonical(exportedSet), try canonical(setFields), c)

    // Tokenizer files, as the model folder has them.
    let files = try FileManager.default.contentsOfDirectory(atPath: out.path)
      .filter { !["model.safetensors", "config.json", "peft"].contains($0) }.sorted()
    XCTAssertEqual(files, e["tokenizer_files"] as! [String], c)
    for f in files {
      XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(f)), try Data(contentsOf: model.appendingPathComponent(f)), "\(c): \(f)")
    }

    // PEFT: the keys and the config PEFT loaded (and writes itself), the base model named.
    let p = fx.section("peft")
    let peftDir = out.appendingPathComponent("peft")
    XCTAssertEqual(try SafeTensors.open(peftDir.appendingPathComponent("adapter_model.safetensors")).names.sorted(),
                   p["tensor_names"] as! [String], c)
    var peftConfig = try JSONSerialization.jsonObject(with: Data(contentsOf: peftDir.appendingPathComponent("adapter_config.json"))) as! [String: Any]
    XCTAssertEqual(peftConfig.removeValue(forKey: "base_model_name_or_path") as? String, model.standardizedFileURL.path, c)
    XCTAssertEqual(try canonical(peftConfig), try canonical(p["adapter_config"]!), c)

    // predict: transformers' logits on the full dev set, and the same bytes from the export alone.
    let pr = fx.section("predict")
    let common = ["--task", fx.task, "--data-dir", TestSupport.glueDir.path, "--max-length", String(pr["max_length"] as! Int)]
    let viaAdapter = work.appendingPathComponent("adapter.tsv"), viaExport = work.appendingPathComponent("export.tsv")
    let a = try run(["predict", "--model", model.path, "--adapter", adapter.path, "--output", viaAdapter.path] + common)
    XCTAssertEqual(a.status, 0, "\(c): \(a.output)")
    let b = try run(["predict", "--model", out.path, "--output", viaExport.path] + common)
    XCTAssertEqual(b.status, 0, "\(c): \(b.output)")
    XCTAssertEqual(try Data(contentsOf: viaAdapter), try Data(contentsOf: viaExport), "\(c): predict on the export differs")
    let ours = try outputs(viaAdapter, width: fx.logits.first!.count)
    XCTAssertEqual(ours.count, pr["rows"] as! Int, c)
    XCTAssertEqual(ours.count, fx.logits.count, c)
    var worst = 0.0
    for (o, t) in zip(ours, fx.logits) { for (x, y) in zip(o, t) { worst = max(worst, abs(x - y)) } }
    XCTAssertLessThanOrEqual(worst, 1e-4, "\(c): predict vs transformers max |Δ|")

    // Nothing half-written is left beside the export.
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work.path).filter { $0.contains("partial") }, [], c)
  }

  /// Parsed JSON written back with sorted keys: equal values give equal text (NSNull and nested
  /// arrays included, which NSDictionary's equality does not see as equal on Linux).
  func canonical(_ value: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
  }

  /// The output columns of `predict --output`, found by their header (`logit_<label>` or `score`).
  func outputs(_ tsv: URL, width: Int) throws -> [[Double]] {
    let lines = try String(contentsOf: tsv, encoding: .utf8).split(separator: "\n")
    let header = lines[0].split(separator: "\t", omittingEmptySubsequences: false)
    let columns = header.indices.filter { header[$0].hasPrefix("logit_") || header[$0] == "score" }
    XCTAssertEqual(columns.count, width, "\(tsv.path): \(header)")
    return lines.dropFirst().map { line in
      let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
      return columns.map { Double(fields[$0])! }
    }
  }

  func run(_ args: [String]) throws -> (status: Int32, output: String) {
    try TestSupport.launch(["sh", "-c", "exec \"$0\" \"$@\" </dev/null", TestSupport.binary] + args, extra: Self.env, timeout: 300)
  }

  func testRefusalsAreOneLineAndLeaveNoFolder() throws {
    let bert = try ExportFixture("bert")
    let model = try FamilyFixtures.folder(.bert)
    addTeardownBlock { try? FileManager.default.removeItem(at: model) }
    let work = try temporaryFolder("petl-export-refusals")
    let adapter = work.appendingPathComponent("rte.safetensors")
    try bert.writeAdapter(to: adapter)
    let out = work.appendingPathComponent("out")
    func export(_ adapter: URL, task: String = "rte", output: URL? = nil, peft: Bool = false) -> [String] {
      ["export", "--model", model.path, "--adapter", adapter.path, "--task", task, "--output", (output ?? out).path] + (peft ? ["--peft"] : [])
    }

    let missing = work.appendingPathComponent("none.safetensors")
    assertOnlyAnErrorLine(try run(export(missing)), missing.path, "no such adapter file")
    // An adapter of another family: its names are not this model's.
    let distil = work.appendingPathComponent("distil.safetensors")
    try ExportFixture("distilbert").writeAdapter(to: distil)
    assertOnlyAnErrorLine(try run(export(distil)), distil.path, "'transformer.layer.0.sa_layer_norm.weight' is not a parameter of this model")
    // Another task, or another head width: by the metadata, and by shape when there is none.
    assertOnlyAnErrorLine(try run(export(adapter, task: "mrpc")), adapter.path, "trained for task 'rte', not 'mrpc'")
    assertOnlyAnErrorLine(try run(export(adapter, task: "stsb")), adapter.path, "trained for task 'rte', not 'stsb'")
    let regression = work.appendingPathComponent("stsb.safetensors")
    try ExportFixture("bert-stsb").writeAdapter(to: regression, metadata: false)
    assertOnlyAnErrorLine(try run(export(regression)), regression.path, "'classifier.weight' has shape [1, 32], the model's is [2, 32]")
    // No head in the adapter and none in the checkpoint: the export would hold a random one.
    let headless = work.appendingPathComponent("headless.safetensors")
    try bert.writeAdapter(to: headless, drop: { $0.hasPrefix("classifier.") })
    assertOnlyAnErrorLine(try run(export(headless)), headless.path, "'classifier.weight'", "random head")
    // --peft takes LayerNorms and the head only.
    let query = work.appendingPathComponent("query.safetensors")
    let q = ["encoder.layer.0.attention.self.query.weight": [Float](repeating: 0.01, count: 32 * 32)]
    try q.values.first!.withUnsafeBufferPointer { try SafeTensors.write(to: query, tensors: [(q.keys.first!, [32, 32], $0)], metadata: [:]) }
    let mixed = work.appendingPathComponent("mixed.safetensors")
    try mergeAdapters([adapter, query], into: mixed)
    assertOnlyAnErrorLine(try run(export(mixed, peft: true)), "--peft", mixed.path, "'encoder.layer.0.attention.self.query.weight' is neither a LayerNorm nor the head")
    XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a refused export creates no folder")
    // A folder with files is never written into; a path under a file cannot be created.
    let full = work.appendingPathComponent("full")
    try FileManager.default.createDirectory(at: full, withIntermediateDirectories: false)
    try Data("keep".utf8).write(to: full.appendingPathComponent("note.txt"))
    assertOnlyAnErrorLine(try run(export(adapter, output: full)), "--output \(full.path)", "not empty")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: full.path), ["note.txt"])
    let underFile = full.appendingPathComponent("note.txt").appendingPathComponent("x")
    assertOnlyAnErrorLine(try run(export(adapter, output: underFile)), "--output \(underFile.path)")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work.path).filter { $0.contains("partial") }, [])
    // An empty folder is taken.
    try FileManager.default.createDirectory(at: out, withIntermediateDirectories: false)
    let ok = try run(export(adapter))
    XCTAssertEqual(ok.status, 0, ok.output)
    XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("model.safetensors").path))
    XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("peft").path), "no --peft, no peft folder")
  }

  /// All tensors of `files` in one adapter (no metadata).
  func mergeAdapters(_ files: [URL], into url: URL) throws {
    var named: [(String, [Int])] = [], values: [[Float]] = []
    for f in files {
      let st = try SafeTensors.open(f)
      for n in st.names { named.append((n, st.info(n)!.shape)); values.append(try st.floats(n)) }
    }
    try FamilyFixtures.withBuffers(values) { b in
      try SafeTensors.write(to: url, tensors: zip(named, b).map { ($0.0.0, $0.0.1, $0.1) }, metadata: [:])
    }
  }

  /// A trained adapter of every family (not a recipe, and not LayerNorm-only): `predict` on its
  /// export gives exactly `predict` with the adapter, and --peft refuses it.
  func testTrainedAdapterRoundTrip() throws {
    for family in EncoderFamily.allCases {
      let model = try FamilyFixtures.folder(family)
      addTeardownBlock { try? FileManager.default.removeItem(at: model) }
      let work = try temporaryFolder("petl-export-trained-\(family.rawValue)")
      let adapter = work.appendingPathComponent("value.safetensors")
      let train = try run(["train", "--model", model.path, "--data-dir", TestSupport.glueDir.path, "--task", "rte",
                           "--modules", "value,ln_out", "--layers", "1", "--lr", "1e-2", "--max-train", "16", "--max-eval", "16",
                           "--max-length", "32", "--epochs", "1", "--batch-size", "8", "--quiet", "--save-adapter", adapter.path])
      XCTAssertEqual(train.status, 0, "\(family): \(train.output)")
      let out = work.appendingPathComponent("export")
      let export = try run(["export", "--model", model.path, "--adapter", adapter.path, "--task", "rte", "--output", out.path])
      XCTAssertEqual(export.status, 0, "\(family): \(export.output)")
      let common = ["--task", "rte", "--data-dir", TestSupport.glueDir.path, "--max-examples", "40", "--max-length", "32"]
      let a = work.appendingPathComponent("a.tsv"), b = work.appendingPathComponent("b.tsv")
      XCTAssertEqual(try run(["predict", "--model", model.path, "--adapter", adapter.path, "--output", a.path] + common).status, 0)
      XCTAssertEqual(try run(["predict", "--model", out.path, "--output", b.path] + common).status, 0)
      XCTAssertEqual(try Data(contentsOf: a), try Data(contentsOf: b), "\(family)")
      assertOnlyAnErrorLine(try run(["export", "--model", model.path, "--adapter", adapter.path, "--task", "rte",
                              "--output", work.appendingPathComponent("peft").path, "--peft"]),
                             "'\(family.path(.value, layer: 1)).weight' is neither a LayerNorm nor the head")
    }
  }
}

import Foundation
import XCTest
@testable import PETLModel

/// Every encoder family through the binary as a user runs it, on its tiny hub-layout checkpoint
/// (`FamilyFixtures`) and real RTE pairs: `inspect` shows the family's names for the module axis; a
/// two-rank `--dp 2` grid trains every trainable set (with a random control) and saves adapters;
/// `predict` and `magnitudes` read those adapters back, and `report` summarises the journal.
final class FamilyGridTests: XCTestCase {
  static let tiny = ["--max-train", "16", "--max-eval", "16", "--max-length", "32", "--epochs", "1",
                     "--batch-size", "8", "--lrs", "1e-2"]
  static let env = ["OPENBLAS_NUM_THREADS": "1"]

  func testEveryFamilyInspectGridReportAdaptersMagnitudes() throws {
    guard FileManager.default.fileExists(atPath: TestSupport.glueDir.appendingPathComponent("RTE/train.tsv").path) else {
      return XCTFail("\(TestSupport.glueDir.path)/RTE missing")
    }
    for family in EncoderFamily.allCases { try check(family) }
  }

  func check(_ family: EncoderFamily) throws {
    let folder = try FamilyFixtures.folder(family)
    addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
    let out = try temporaryFolder("petl-family-\(family.rawValue)")

    let inspect = try TestSupport.launch([TestSupport.binary, "inspect", "--model", folder.path], extra: Self.env, timeout: 120)
    XCTAssertEqual(inspect.status, 0, inspect.output)
    XCTAssertTrue(inspect.output.contains("family: \(family.rawValue)"), inspect.output)
    let query = family.path(.query, layer: 0), lnOut = family.path(.lnOut, layer: 0)
    XCTAssertTrue(inspect.output.contains("query         \(query)"), "\(family): \(inspect.output)")
    XCTAssertTrue(inspect.output.contains("ln_out        \(lnOut)"), "\(family): \(inspect.output)")
    XCTAssertTrue(inspect.output.contains("pooler        " + (family.hasPooler ? "pooler.dense" : "(none in this family)")), inspect.output)

    var modules = ["full", "bias", "classifier", "embeddings", "query", "key", "value", "attn_out", "intermediate",
                   "output", "ln_attn", "ln_out", "layernorm", "query+value", "random"]
    if family.hasPooler { modules.append("pooler") }
    let grid = try TestSupport.launch(
      ["mpirun", "-n", "2", TestSupport.binary, "grid", "--model", folder.path, "--data-dir", TestSupport.glueDir.path,
       "--tasks", "rte", "--modules", modules.joined(separator: ","), "--layers", "1", "--match", "layernorm@1",
       "--dp", "2", "--save-adapters", "--quiet", "--results", out.path] + Self.tiny,
      extra: Self.env, timeout: 600)
    XCTAssertEqual(grid.status, 0, "\(family): \(grid.output)")
    let journal = try String(contentsOf: out.appendingPathComponent("journal.jsonl"), encoding: .utf8)
    let lines = journal.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    XCTAssertEqual(lines.count, modules.count, "\(family): one cell per set")
    for line in lines {
      XCTAssertEqual(line["status"] as? String, "ok", "\(family): \(line)")
      XCTAssertEqual(line["ranks"] as? Int, 2, "\(family)")
      XCTAssertEqual(line["allreduce_bytes_per_step"] as? Int, 4 * (line["trainable_parameters"] as! Int), "\(family)")
    }
    let adapters = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("adapters").path)
      .filter { $0.hasSuffix(".safetensors") }.sorted().map { out.appendingPathComponent("adapters/\($0)").path }
    XCTAssertEqual(adapters.count, modules.count, "\(family): one adapter per cell")

    // An adapter holds the family's names, and predict reads it back onto the checkpoint.
    let layernorm = lines.first { ($0["spec"] as! [String: Any])["modules"] as? [String] == ["layernorm"] }!
    let adapter = out.appendingPathComponent("adapters/\(layernorm["spec_hash"] as! String).safetensors")
    let names = try SafeTensors.open(adapter).names
    XCTAssertTrue(names.contains(family.path(.lnOut, layer: 1) + ".weight"), "\(family): \(names)")
    XCTAssertTrue(names.contains(family.headPaths.out + ".weight"), "\(family): \(names)")
    let predict = try TestSupport.launch(
      [TestSupport.binary, "predict", "--model", folder.path, "--data-dir", TestSupport.glueDir.path, "--task", "rte",
       "--adapter", adapter.path, "--max-examples", "16", "--max-length", "32"], extra: Self.env, timeout: 120)
    XCTAssertEqual(predict.status, 0, "\(family): \(predict.output)")

    // The report reads the family's journal: a row per trainable set, the task's column.
    let report = try TestSupport.launch([TestSupport.binary, "report", out.appendingPathComponent("journal.jsonl").path,
                                         "--output", out.appendingPathComponent("report").path], extra: Self.env, timeout: 120)
    XCTAssertEqual(report.status, 0, "\(family): \(report.output)")
    let markdown = try String(contentsOf: out.appendingPathComponent("report/report.md"), encoding: .utf8)
    for set in ["ln_out", "query+value", "random"] {
      XCTAssertTrue(markdown.contains("| \(set)"), "\(family): no row for \(set) in \(markdown.prefix(800))")
    }

    let magnitudes = try TestSupport.launch(
      [TestSupport.binary, "magnitudes", "--model", folder.path, "--output", out.appendingPathComponent("mag").path,
       "--adapter"] + adapters, extra: Self.env, timeout: 120)
    XCTAssertEqual(magnitudes.status, 0, "\(family): \(magnitudes.output)")
    let csv = try String(contentsOf: out.appendingPathComponent("mag/magnitudes.csv"), encoding: .utf8)
    XCTAssertTrue(csv.contains("ln_out,1,gamma"), "\(family): \(csv.prefix(400))")
  }
}

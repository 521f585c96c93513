import Foundation
import XCTest
@testable import PETLKernels
@testable import PETLModel
@testable import PETLTraining

/// LoRA cells through the binary under a real `mpirun`: a `--dp 2` grid trains A and B (and the head)
/// to what one rank trains, the all-reduce carries exactly their 4 bytes per scalar, the adapters
/// hold nothing else; a layer-wise LoRA grid in another family; `predict` and `export --peft` read
/// the adapters back; a set LoRA cannot adapt is one error line.
final class LoRAGridTests: XCTestCase {
  static let env = ["OPENBLAS_NUM_THREADS": "1"]
  static let tiny = ["--max-train", "24", "--max-eval", "16", "--max-length", "24", "--epochs", "1",
                     "--batch-size", "8", "--no-prefix-cache", "--lrs", "5e-3"]

  func journal(_ results: URL) throws -> [[String: Any]] {
    let text = try String(contentsOf: results.appendingPathComponent("journal.jsonl"), encoding: .utf8)
    return text.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
  }

  func testDataParallelLoRAMatchesOneRankAndReducesOnlyAdapters() throws {
    try requireModelAndData()
    let data = TestSupport.root.appendingPathComponent("data")
    let one = try temporaryFolder("petl-lora"), two = try temporaryFolder("petl-lora")
    func grid(_ ranks: Int, _ out: URL, _ extra: [String]) throws -> (status: Int32, output: String) {
      try TestSupport.launch(["mpirun", "-n", String(ranks), TestSupport.binary, "grid", "--model", TestSupport.modelDir.path,
                              "--data-dir", data.path, "--tasks", "rt-vader", "--results", out.path, "--method", "lora",
                              "--modules", "query+value", "--layers", "all", "--lora-rank", "4", "--lora-alpha", "8",
                              "--save-adapters", "--quiet"] + Self.tiny + extra, extra: Self.env, timeout: 300)
    }
    let r1 = try grid(1, one, [])
    XCTAssertEqual(r1.status, 0, r1.output)
    let r2 = try grid(2, two, ["--dp", "2"])
    XCTAssertEqual(r2.status, 0, r2.output)
    XCTAssertTrue(r2.output.contains("lora:query+value@all"), r2.output)
    let l1 = try journal(one)[0], l2 = try journal(two)[0]
    XCTAssertEqual(l1["spec_hash"] as? String, l2["spec_hash"] as? String)
    let options = (l2["spec"] as! [String: Any])["options"] as! [String: Any]
    XCTAssertEqual(options["method"] as? String, "lora")
    XCTAssertEqual(options["loraRank"] as? Int, 4)
    // A [4,384] and B [384,4] on query and value in 6 layers, plus the head [2,384] + [2]
    let trainable = 6 * 2 * (4 * 384 + 384 * 4) + 2 * 384 + 2
    XCTAssertEqual(l2["trainable_parameters"] as? Int, trainable)
    XCTAssertEqual(l2["ranks"] as? Int, 2)
    XCTAssertEqual(l2["allreduce_bytes_per_step"] as? Int, 4 * trainable)
    let hash = l1["spec_hash"] as! String
    let a = try SafeTensors.open(one.appendingPathComponent("adapters/\(hash).safetensors"))
    let b = try SafeTensors.open(two.appendingPathComponent("adapters/\(hash).safetensors"))
    XCTAssertEqual(a.names, b.names)
    XCTAssertEqual(a.names.count, 6 * 2 * 2 + 2)
    XCTAssertTrue(a.names.allSatisfy { $0.contains(".lora_A.") || $0.contains(".lora_B.") || $0.hasPrefix("classifier.") }, "\(a.names)")
    var moved = 0
    for name in a.names {
      let x = try a.floats(name), y = try b.floats(name)
      // as GridTests.testDataParallelMatchesOneRank: summation order differs, nothing else
      var worst: Float = 0
      for i in x.indices { worst = max(worst, abs(x[i] - y[i]) - 1e-4 * abs(x[i])) }
      XCTAssertLessThan(worst, 5e-5, name)
      if name.contains(".lora_B.") && x.contains(where: { $0 != 0 }) { moved += 1 }
    }
    XCTAssertEqual(moved, 12, "every B left zero")

    // predict and export --peft read the adapter back onto the checkpoint
    let adapter = one.appendingPathComponent("adapters/\(hash).safetensors").path
    let predict = try TestSupport.launch([TestSupport.binary, "predict", "--model", TestSupport.modelDir.path, "--data-dir", data.path,
                                          "--task", "rt-vader", "--adapter", adapter, "--max-examples", "16", "--max-length", "24"],
                                         extra: Self.env, timeout: 120)
    XCTAssertEqual(predict.status, 0, predict.output)
    let export = try TestSupport.launch([TestSupport.binary, "export", "--model", TestSupport.modelDir.path, "--task", "rt-vader",
                                         "--adapter", adapter, "--output", one.appendingPathComponent("export").path, "--peft"],
                                        extra: Self.env, timeout: 120)
    XCTAssertEqual(export.status, 0, export.output)
    XCTAssertTrue(export.output.contains("LoRA r=4 on 12 linear layers"), export.output)
  }

  /// Layer-wise LoRA cells in DistilBERT (its own module names) under `--dp 2`.
  func testLayerWiseLoRAGridInAnotherFamily() throws {
    guard FileManager.default.fileExists(atPath: TestSupport.glueDir.appendingPathComponent("RTE/train.tsv").path) else {
      return XCTFail("\(TestSupport.glueDir.path)/RTE missing")
    }
    let folder = try FamilyFixtures.folder(.distilbert)
    addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
    let out = try temporaryFolder("petl-lora-family")
    let run = try TestSupport.launch(
      ["mpirun", "-n", "2", TestSupport.binary, "grid", "--model", folder.path, "--data-dir", TestSupport.glueDir.path,
       "--tasks", "rte", "--method", "lora", "--modules", "query,attn_out,intermediate+output", "--layers", "each",
       "--dp", "2", "--save-adapters", "--quiet", "--results", out.path] + FamilyGridTests.tiny,
      extra: Self.env, timeout: 300)
    XCTAssertEqual(run.status, 0, run.output)
    let lines = try journal(out)
    XCTAssertEqual(lines.count, 3 * 2, "three sets x two layers")
    for line in lines {
      XCTAssertEqual(line["status"] as? String, "ok", "\(line)")
      XCTAssertEqual(line["allreduce_bytes_per_step"] as? Int, 4 * (line["trainable_parameters"] as! Int))
      let hash = line["spec_hash"] as! String
      let names = try SafeTensors.open(out.appendingPathComponent("adapters/\(hash).safetensors")).names
      XCTAssertTrue(names.allSatisfy { $0.contains(".lora_") || $0.hasPrefix("classifier.") || $0.hasPrefix("pre_classifier.") }, "\(names)")
      XCTAssertTrue(names.contains { $0.hasPrefix("transformer.layer.") && $0.hasSuffix(".lora_A.weight") }, "\(names)")
    }
  }

  /// LoRA cells in bf16 under `mpirun` with `--dp 2`: the journal names the precision (part of the
  /// cell's identity: the spec hash differs from the fp32 cell's), the all-reduce carries A, B and the
  /// head only, every B moved; `predict --precision bf16` reads the adapter back.
  func testBF16LoRAGridUnderDataParallel() throws {
    try BF16KernelTests.requireBF16()
    guard !BF16Hardware.instructions().isEmpty else {
      throw XCTSkip("this CPU has no bf16 dot-product instructions (\(BF16Hardware.required)): --precision bf16 refuses to run")
    }
    try requireModelAndData()
    var o = TrainOptions(); o.method = .lora; o.loraRank = 4
    let fp32 = CellSpec(task: "rt-vader", modules: [.query, .value], layers: .all, model: "m", options: o)
    o.precision = .bf16
    let bf16 = CellSpec(task: "rt-vader", modules: [.query, .value], layers: .all, model: "m", options: o)
    XCTAssertNotEqual(fp32.hash, bf16.hash, "a bf16 LoRA cell is not the fp32 one")
    let data = TestSupport.root.appendingPathComponent("data")
    let out = try temporaryFolder("petl-lora-bf16")
    let r = try TestSupport.launch(["mpirun", "-n", "2", TestSupport.binary, "grid", "--model", TestSupport.modelDir.path,
                                    "--data-dir", data.path, "--tasks", "rt-vader", "--results", out.path, "--method", "lora",
                                    "--modules", "query+value,output", "--layers", "5", "--lora-rank", "4", "--dp", "2",
                                    "--precision", "bf16", "--save-adapters", "--quiet"] + Self.tiny, extra: Self.env, timeout: 300)
    XCTAssertEqual(r.status, 0, r.output)
    let lines = try journal(out)
    XCTAssertEqual(lines.count, 2, r.output)
    for line in lines {
      XCTAssertEqual(line["status"] as? String, "ok", "\(line)")
      let options = (line["spec"] as! [String: Any])["options"] as! [String: Any]
      XCTAssertEqual(options["precision"] as? String, "bf16")
      XCTAssertEqual(line["allreduce_bytes_per_step"] as? Int, 4 * (line["trainable_parameters"] as! Int))
      let file = out.appendingPathComponent("adapters/\(line["spec_hash"] as! String).safetensors")
      let st = try SafeTensors.open(file)
      XCTAssertTrue(st.names.allSatisfy { $0.contains(".lora_") || $0.hasPrefix("classifier.") }, "\(st.names)")
      XCTAssertTrue(st.names.contains { $0.hasPrefix("encoder.layer.5.") }, "\(st.names)")
      for name in st.names where name.contains(".lora_B.") {
        XCTAssertTrue(try st.floats(name).contains { $0 != 0 }, "\(name) left zero")
      }
      let predict = try TestSupport.launch([TestSupport.binary, "predict", "--model", TestSupport.modelDir.path, "--data-dir", data.path,
                                            "--task", "rt-vader", "--adapter", file.path, "--max-examples", "16", "--max-length", "24",
                                            "--precision", "bf16"], extra: Self.env, timeout: 120)
      XCTAssertEqual(predict.status, 0, predict.output)
    }
  }

  /// `--method lora` on a set that is not a weight matrix, or with a bad option: one error line naming
  /// it, before any training.
  func testRefusedSetsAreOneLine() throws {
    try requireModelAndData()
    let data = TestSupport.root.appendingPathComponent("data")
    for (args, needle) in [(["--modules", "layernorm"], "--method lora: 'layernorm' is not a weight-matrix module"),
                           (["--modules", "query", "--lora-rank", "0"], "--lora-rank 0")] {
      let r = try TestSupport.launch([TestSupport.binary, "train", "--model", TestSupport.modelDir.path, "--data-dir", data.path,
                                      "--task", "rt-vader", "--method", "lora"] + args, extra: Self.env, timeout: 60)
      XCTAssertNotEqual(r.status, 0, r.output)
      XCTAssertTrue(r.output.contains(needle), r.output)
      XCTAssertFalse(r.output.contains("epoch"), r.output)
    }
    for (args, needle) in [(["--modules", "query,ln_out"], "--method lora: 'ln_out' is not a weight-matrix module")] {
      let g = try TestSupport.launch([TestSupport.binary, "grid", "--model", TestSupport.modelDir.path, "--data-dir", data.path,
                                      "--tasks", "rt-vader", "--method", "lora", "--plan-only"] + args, extra: Self.env, timeout: 60)
      XCTAssertNotEqual(g.status, 0, g.output)
      XCTAssertTrue(g.output.contains(needle), g.output)
    }
    let r = try TestSupport.launch([TestSupport.binary, "train", "--model", TestSupport.modelDir.path, "--data-dir", data.path,
                                    "--task", "rt-vader", "--lora-rank", "4"], extra: Self.env, timeout: 60)
    XCTAssertNotEqual(r.status, 0, r.output)
    XCTAssertTrue(r.output.contains("--lora-rank: only with --method lora"), r.output)
  }
}

import Foundation
import XCTest
@testable import PETLKernels
@testable import PETLModel
@testable import PETLTraining
@testable import PETLStudy
import PETLSupport

/// `--precision`: what each request resolves to on a CPU with and without bf16 dot products; the
/// precision in a cell's identity and its journal inputs (fp32 cells keep their old hashes); and
/// through the binary on the tiny BERT checkpoint: a two-rank `auto` grid (bf16 here), then an fp32
/// one on the same journal, whose report sets the bf16 records aside naming the precision.
final class PrecisionTests: XCTestCase {
  final class Ranks: Collective {
    let rank = 0, size: Int, capable: Int
    init(size: Int, capable: Int) { self.size = size; self.capable = capable }
    func allreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) {}
    func allreduceSum(_ x: Double) -> Double { Double(capable) }  // this rank's 1 plus the others'
    func broadcast(bytes: inout [UInt8], root: Int) {}
  }

  func testRequestsResolve() throws {
    let with = ["avx512_bf16"]
    XCTAssertEqual(try PrecisionChoice.local(.fp32, instructions: [], oneDNNComputesBF16: false).precision, .fp32)
    XCTAssertEqual(try PrecisionChoice.local(.bf16, instructions: with, oneDNNComputesBF16: true).precision, .bf16)
    XCTAssertEqual(try PrecisionChoice.local(.auto, instructions: with, oneDNNComputesBF16: true).precision, .bf16)
    let none = try PrecisionChoice.local(.auto, instructions: [], oneDNNComputesBF16: true)
    XCTAssertEqual(none.precision, .fp32)
    XCTAssertTrue(none.why.contains("AVX512_BF16 or AMX-BF16"), none.why)
    XCTAssertEqual(try PrecisionChoice.local(.auto, instructions: with, oneDNNComputesBF16: false).precision, .fp32)
    XCTAssertThrowsError(try PrecisionChoice.local(.bf16, instructions: [], oneDNNComputesBF16: true)) { e in
      let m = (e as? PETLError)?.message ?? ""
      XCTAssertTrue(m.contains("--precision bf16") && m.contains("AVX512_BF16 or AMX-BF16"), m)
      XCTAssertFalse(m.contains("\n"), "one line")
    }
    // auto over ranks: bf16 only if every rank would choose it
    let local = try PrecisionChoice.local(.auto, instructions: with, oneDNNComputesBF16: true)
    XCTAssertEqual(PrecisionChoice.agreed(.auto, local: local, group: Ranks(size: 4, capable: 4)).precision, .bf16)
    let mixed = PrecisionChoice.agreed(.auto, local: local, group: Ranks(size: 4, capable: 3))
    XCTAssertEqual(mixed.precision, .fp32)
    XCTAssertTrue(mixed.why.contains("1 of 4 ranks"), mixed.why)
    XCTAssertEqual(PrecisionChoice.agreed(.bf16, local: local, group: Ranks(size: 4, capable: 3)).precision, .bf16)
  }

  func testPrecisionIsPartOfTheCellAndItsInputs() throws {
    var o = TrainOptions()
    let fp32 = CellSpec(task: "rte", modules: [.layernorm], layers: .all, model: "m", options: o)
    XCTAssertFalse(fp32.canonicalJSON.contains("precision"), "fp32 cells keep the hash they had")
    o.precision = .bf16
    let bf16 = CellSpec(task: "rte", modules: [.layernorm], layers: .all, model: "m", options: o)
    XCTAssertNotEqual(fp32.hash, bf16.hash)
    XCTAssertEqual(try JSONDecoder().decode(CellSpec.self, from: Data(bf16.canonicalJSON.utf8)), bf16)
    let a = CellInputs(data: "d", model: "m"), b = CellInputs(data: "d", model: "m", precision: .bf16)
    XCTAssertEqual(b.differences(from: a), ["precision bf16 -> fp32"])
    let old = try JSONDecoder().decode(CellInputs.self, from: Data(#"{"data":"d","model":"m","engine":\#(Engine.numericsVersion)}"#.utf8))
    XCTAssertEqual(old, a, "inputs recorded before precision are fp32")
    XCTAssertFalse(String(decoding: try JSONEncoder().encode(a), as: UTF8.self).contains("precision"))
  }

  func testGridsOfBothPrecisionsNeverPool() throws {
    try BF16KernelTests.requireBF16()
    guard !BF16Hardware.instructions().isEmpty else {
      throw XCTSkip("this CPU has no bf16 dot-product instructions (\(BF16Hardware.required)): --precision bf16 refuses to run")
    }
    guard FileManager.default.fileExists(atPath: TestSupport.glueDir.appendingPathComponent("RTE/train.tsv").path) else {
      return XCTFail("\(TestSupport.glueDir.path)/RTE missing")
    }
    let folder = try FamilyFixtures.folder(.bert)
    addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
    let out = try temporaryFolder("petl-precision")
    let grid = [TestSupport.binary, "grid", "--model", folder.path, "--data-dir", TestSupport.glueDir.path, "--tasks", "rte",
                "--modules", "layernorm", "--quiet", "--results", out.path] + FamilyGridTests.tiny
    // two ranks agree on auto (an all-reduce) before planning
    let b = try TestSupport.launch(["mpirun", "-n", "2"] + grid + ["--precision", "auto"], extra: FamilyGridTests.env, timeout: 300)
    XCTAssertEqual(b.status, 0, b.output)
    XCTAssertTrue(b.output.contains("precision: bf16 (--precision auto:") && b.output.contains("on all 2 ranks"), b.output)
    let f = try TestSupport.launch(grid + ["--precision", "fp32"], extra: FamilyGridTests.env, timeout: 300)
    XCTAssertEqual(f.status, 0, f.output)
    let lines = try String(contentsOf: out.appendingPathComponent("journal.jsonl"), encoding: .utf8).split(separator: "\n")
      .map { try JSONDecoder().decode(JournalRecord.self, from: Data($0.utf8)) }
    XCTAssertEqual(lines.map(\.spec.options.precision), [.bf16, .fp32])
    XCTAssertEqual(lines.map { $0.inputs?.precision }, [.bf16, .fp32])
    let report = try String(contentsOf: out.appendingPathComponent("report/report.md"), encoding: .utf8)
    XCTAssertTrue(report.contains("precision bf16 -> fp32"), String(report.suffix(600)))
  }
}

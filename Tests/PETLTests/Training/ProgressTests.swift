import Foundation
import XCTest
@testable import PETLTraining

/// A cell reports progress while it trains, so a slow cell can be told from a hung one.
final class ProgressTests: XCTestCase {
  func testLineAfterEachIntervalButNotAtTheLastStep() {
    var p = Progress(totalSteps: 4, interval: 0, ranks: 1)
    let lines = (1...4).map { p.line(step: $0, epoch: 1, examples: 8, meanLoss: 0.5) }
    XCTAssertNil(lines[3], "the epoch line covers the end")
    XCTAssertNotNil(lines[0]?.range(of: #"^step 1/4 \(epoch 1\)  loss 0\.5000  [0-9.]+ ex/s  ETA \d+s$"#, options: .regularExpression), lines[0] ?? "nil")
    var slow = Progress(totalSteps: 4, interval: 3600, ranks: 1)
    XCTAssertNil(slow.line(step: 1, epoch: 1, examples: 8, meanLoss: 0.5), "not before the interval")
    var dp = Progress(totalSteps: 4, interval: 0, ranks: 2)
    XCTAssertTrue(dp.line(step: 1, epoch: 1, examples: 8, meanLoss: 0.25)!.contains("loss ~0.5000"), "a shard's share, scaled")
  }

  func testDurations() {
    XCTAssertEqual(Progress.duration(59.4), "59s")
    XCTAssertEqual(Progress.duration(61), "1m01s")
    XCTAssertEqual(Progress.duration(3 * 3600 + 7 * 60), "3h07m")
  }

  /// Through the binary: step lines at the requested interval, then the epoch lines.
  func testTrainPrintsProgressLinesAndQuietSilencesThem() throws {
    _ = try TestSupport.requireModel()
    let data = TestSupport.root.appendingPathComponent("data")
    let argv = [TestSupport.binary, "train", "--model", TestSupport.modelDir.path, "--data-dir", data.path, "--task", "rt-vader",
                "--modules", "ln_out", "--layers", "5", "--max-train", "96", "--max-eval", "16", "--max-length", "24",
                "--batch-size", "4", "--epochs", "2"]
    let run = try TestSupport.launch(argv + ["--progress-every", "0.01"], extra: ["OPENBLAS_NUM_THREADS": "1"], timeout: 300)
    XCTAssertEqual(run.status, 0, run.output)
    let steps = run.output.split(separator: "\n").filter { $0.hasPrefix("step ") }
    XCTAssertGreaterThanOrEqual(steps.count, 3, run.output)
    XCTAssertTrue(steps.allSatisfy { $0.contains("/48 (epoch ") && $0.contains(" ex/s  ETA ") }, run.output)
    XCTAssertEqual(run.output.split(separator: "\n").filter { $0.hasPrefix("epoch ") }.count, 2, run.output)
    let quiet = try TestSupport.launch(argv + ["--quiet"], extra: ["OPENBLAS_NUM_THREADS": "1"], timeout: 300)
    XCTAssertEqual(quiet.status, 0, quiet.output)
    XCTAssertFalse(quiet.output.contains("step ") || quiet.output.contains("epoch "), quiet.output)
  }
}

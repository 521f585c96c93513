import Foundation
import XCTest
@testable import PETLStudy

extension FailureTests {
  /// A grid that receives SIGUSR1 every quarter millisecond or so while its cell trains: the request
  /// is recorded, the cell finishes, and the process exits cleanly; three times. With an asynchronous
  /// handler, a signal that landed inside oneDNN's fp32 GEMM (the engine's fp32 products on an AVX-512
  /// CPU with OpenBLAS pinned to Haswell) wrote its frame into the heap (see `StopSignal`): one such
  /// run crashed about every other time ("corrupted size vs. prev_size", SIGABRT, SIGSEGV), the
  /// mid-grid stop test 3 times in 10. One process, no mpirun: a signal storm on one rank is the stop
  /// path of every rank.
  func testAStormOfStopSignalsDuringACellEndsCleanly() throws {
    try requireModelAndData()
    for run in 1...3 {
      let out = try temporaryFolder("petl-fail")
      let p = try spawn([TestSupport.binary, "grid", "--model", TestSupport.modelDir.path, "--data-dir", Self.data.path,
                         "--tasks", "rt-vader", "--results", out.path, "--max-train", "400", "--max-eval", "64",
                         "--max-length", "48", "--epochs", "1", "--batch-size", "16", "--no-prefix-cache", "--lrs", "5e-3",
                         "--modules", "ln_out", "--layers", "3"], results: out)
      let log = out.appendingPathComponent("spawn.log")
      // Once the cell trains (its first line), signals until the process ends or the bound passes.
      let deadline = Date().addingTimeInterval(120)
      func text() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
      while p.isRunning && Date() < deadline && !text().contains("initialised classifier") { usleep(5_000) }
      var sent = 0
      while p.isRunning && Date() < deadline {
        kill(p.processIdentifier, SIGUSR1)
        sent += 1
        usleep(250)
      }
      let status = end(p, within: 5)
      let output = text()
      XCTAssertGreaterThan(sent, 50, "run \(run): the storm reached the cell: \(output)")
      XCTAssertEqual(status, 0, "run \(run): one cell, finished: nothing left to resume. \(output)")
      XCTAssertTrue(output.contains("grid: 1 ok, 0 failed, 0 already done, 0 left"), "run \(run): \(output)")
      XCTAssertEqual(try journalLines(out).count, 1)
      guard status == 0 else { return }
    }
  }
}

import XCTest
@testable import PETLDistributed

/// Stop signals reach no computing thread: `install()` blocks them on the calling thread, every thread
/// it starts later inherits the block, and the watcher thread records them. (An asynchronous handler
/// that runs inside oneDNN's fp32 GEMM corrupts the heap: see `StopSignal`; FailureTests'
/// signal-storm test is the end-to-end check.)
final class StopSignalTests: XCTestCase {
  override func tearDown() { StopSignal.reset() }

  /// The signal mask of a thread started by a thread that called `install()`, read on that thread.
  private func maskOfThreadStartedAfterInstall() -> (installer: Bool, child: Bool) {
    var installer = false, child = false
    let done = DispatchSemaphore(value: 0)
    let t = Thread {
      StopSignal.install()
      installer = Self.blocksAll()
      let inner = Thread { child = Self.blocksAll(); done.signal() }
      inner.start()
    }
    t.start()
    done.wait()
    return (installer, child)
  }

  private static func blocksAll() -> Bool {
    var current = sigset_t()
    pthread_sigmask(SIG_BLOCK, nil, &current)
    return StopSignal.handled.allSatisfy { sigismember(&current, $0) == 1 }
  }

  func testInstallBlocksTheStopSignalsOnItsThreadAndOnThreadsItStarts() {
    let mask = maskOfThreadStartedAfterInstall()
    XCTAssertTrue(mask.installer, "install() must block SIGUSR1, SIGTERM and SIGINT on its thread")
    XCTAssertTrue(mask.child, "a thread started after install() (an engine worker, MPI's) must inherit the block")
  }

  /// A signal sent to the process is recorded while the thread that installed blocks it: the watcher
  /// took it (or a handler on a thread that predates `install()`, as in this test process).
  func testASignalToTheProcessIsRecorded() {
    StopSignal.install()
    StopSignal.reset()
    kill(getpid(), SIGUSR1)
    let deadline = Date().addingTimeInterval(5)
    while StopSignal.receivedSignal == nil && Date() < deadline { usleep(1_000) }
    XCTAssertEqual(StopSignal.receivedSignal, SIGUSR1)
  }

  /// A child started through `unblockedForChildren` by a thread that blocks the stop signals does not
  /// block them (an mpirun started by a test would otherwise never see, nor forward, SIGUSR1).
  func testAChildStartedThroughUnblockedForChildrenDoesNotBlockThem() throws {
    var blockedInChild: String?
    var stillBlocked = false
    let done = DispatchSemaphore(value: 0)
    Thread {
      defer { done.signal() }
      StopSignal.install()
      let p = Process()
      p.executableURL = URL(fileURLWithPath: "/bin/sh")
      p.arguments = ["-c", "grep SigBlk /proc/self/status"]
      let pipe = Pipe()
      p.standardOutput = pipe
      guard (try? StopSignal.unblockedForChildren { try p.run() }) != nil else { return }
      p.waitUntilExit()
      blockedInChild = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      stillBlocked = Self.blocksAll()
    }.start()
    done.wait()
    let mask = try XCTUnwrap(blockedInChild?.split(separator: "\t").last.flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines), radix: 16) })
    for sig in StopSignal.handled { XCTAssertEqual(mask & (1 << UInt64(sig - 1)), 0, "signal \(sig) blocked in the child: \(blockedInChild ?? "")") }
    XCTAssertTrue(stillBlocked, "the calling thread blocks them again afterwards")
  }
}

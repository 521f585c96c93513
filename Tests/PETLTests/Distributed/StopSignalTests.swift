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
}

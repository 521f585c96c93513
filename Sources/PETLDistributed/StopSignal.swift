import Foundation
import Synchronization

/// The first stop request of this process (0: none). A lock-free atomic is one of the few things a
/// signal handler may touch.
private let pendingStopSignal = Atomic<Int32>(0)

/// Stop requests: SIGUSR1, SIGTERM and SIGINT recorded as "stop handing out work" instead of killing
/// the process, from the first instruction of `main` on.
///
/// Slurm's `--signal=USR1@N` warns a job before its time limit, SIGTERM comes first when a job is
/// cancelled or preempted, and mpirun forwards SIGUSR1 to its ranks. Their default action kills the
/// process and would lose the cells in flight, and on a requeued job with little time left the warning
/// can arrive while the ranks are still starting up. So `install()` runs before anything else (before
/// the OpenBLAS re-exec, MPI and data loading); a request that arrives at any moment is kept and the
/// grid acts on it as soon as it starts (no cell is handed out; exit 75, resumable). Commands that
/// have nothing to stop gracefully call `restoreDefaults()` once they are known, which hands the
/// signals back to their default action (and re-raises one already received).
///
/// The signals never interrupt a thread that computes: `install()` blocks them on the calling thread
/// (the main thread, before any other thread exists, so every thread made later inherits the block:
/// MPI's, the engine's workers, OpenMP's) and one watcher thread takes them with `sigwait`. An
/// asynchronous handler is not safe here: oneDNN 2.x's fp32 GEMM kernels (`jit_avx512_common_gemm_f32`)
/// point `rsp` into a heap buffer while they run, so a signal delivered to a thread inside one writes
/// its frame into the heap (uxlfoundation/oneDNN#4845, fixed in 3.11): the stop test crashed with
/// "corrupted size vs. prev_size" or "free(): invalid next size" after SIGUSR1. The handler stays
/// installed only for threads that existed before `install()` (a test process's), which a signal may
/// still reach.
///
/// A stop file (`SWIFT_PETL_STOP_FILE`, set by `launch/slurm.sbatch`) is the same request made by the
/// batch shell, for the moment before any rank exists to receive a signal.
public enum StopSignal {
  public static let handled: [Int32] = [SIGUSR1, SIGTERM, SIGINT]
  /// The environment variable naming a file whose existence is a stop request.
  public static let stopFileVariable = "SWIFT_PETL_STOP_FILE"
  /// A stop request that came from the stop file rather than a signal.
  public static let stopFileRequest: Int32 = -1

  /// Blocks the stop signals on the calling thread (and so on every thread it starts later), starts
  /// the watcher thread once, and installs the recording handler for threads that do not block them.
  /// Idempotent. A signal that arrived while they were blocked across the OpenBLAS re-exec
  /// (`BLASCore`) is pending and the watcher takes it now.
  public static func install() {
    for sig in handled {
      var action = sigaction()
      action.__sigaction_handler.sa_handler = { sig in
        _ = pendingStopSignal.compareExchange(expected: 0, desired: sig, ordering: .sequentiallyConsistent)
      }
      sigemptyset(&action.sa_mask)
      action.sa_flags = SA_RESTART
      sigaction(sig, &action, nil)
    }
    defaultsRestored.store(false, ordering: .sequentiallyConsistent)
    var set = signalSet()
    pthread_sigmask(SIG_BLOCK, &set, nil)
    StopWatcher.startOnce()
  }

  /// For commands that do not stop gracefully: the default actions again; a stop signal already
  /// received acts now, as it would have without the handlers.
  public static func restoreDefaults() {
    for sig in handled { signal(sig, SIG_DFL) }
    defaultsRestored.store(true, ordering: .sequentiallyConsistent)
    var set = signalSet()
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
    if let sig = receivedSignal, sig > 0 { raise(sig) }
  }

  /// Runs `body`, which starts a child process, with the stop signals unblocked on the calling thread:
  /// a child inherits the mask of the thread that starts it, and an mpirun that blocks them never sees
  /// (nor forwards) a stop request. For a process that called `install()` (a test process; the grid
  /// itself starts no child).
  public static func unblockedForChildren<T>(_ body: () throws -> T) rethrows -> T {
    var set = signalSet(), before = sigset_t()
    pthread_sigmask(SIG_UNBLOCK, &set, &before)
    defer { pthread_sigmask(SIG_SETMASK, &before, nil) }
    return try body()
  }

  /// The first stop request received, if any: a signal number, or `stopFileRequest`.
  public static var receivedSignal: Int32? {
    let sig = pendingStopSignal.load(ordering: .sequentiallyConsistent)
    return sig == 0 ? nil : sig
  }

  /// Records `sig` as a signal would (a group leader reported a signal that reached only its rank).
  public static func request(_ sig: Int32) {
    _ = pendingStopSignal.compareExchange(expected: 0, desired: sig, ordering: .sequentiallyConsistent)
  }

  /// Records a stop request if the stop file named in the environment exists.
  public static func checkStopFile(environment: [String: String] = ProcessInfo.processInfo.environment) {
    guard receivedSignal == nil, let path = environment[stopFileVariable], !path.isEmpty else { return }
    if access(path, F_OK) == 0 { request(stopFileRequest) }
  }

  /// Forgets any request (tests that run several grids in one process).
  public static func reset() { pendingStopSignal.store(0, ordering: .sequentiallyConsistent) }

  /// The request's name for log lines, e.g. `SIGUSR1`.
  public static func name(_ sig: Int32) -> String {
    switch sig {
    case SIGUSR1: return "SIGUSR1"
    case SIGTERM: return "SIGTERM"
    case SIGINT: return "SIGINT"
    case stopFileRequest: return "stop file"
    default: return "signal \(sig)"
    }
  }

  static func signalSet() -> sigset_t {
    var set = sigset_t()
    sigemptyset(&set)
    for sig in handled { sigaddset(&set, sig) }
    return set
  }
}

/// Set by `restoreDefaults`: a signal the watcher takes afterwards gets its default action.
private let defaultsRestored = Atomic<Bool>(false)

/// The one thread that receives the stop signals (`sigwait`), so no computing thread is ever
/// interrupted by them (see `StopSignal`).
private enum StopWatcher {
  private static let started = Atomic<Bool>(false)

  static func startOnce() {
    guard started.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged else { return }
    var thread = pthread_t()
    // Created by a thread that blocks the signals: the watcher starts with them blocked, as
    // `sigwait` requires.
    let rc = pthread_create(&thread, nil, { _ in
      var set = StopSignal.signalSet()
      while true {
        var sig: Int32 = 0
        guard sigwait(&set, &sig) == 0 else { continue }
        if defaultsRestored.load(ordering: .sequentiallyConsistent) {
          // A command without a graceful stop: the signal acts as if never caught.
          var one = sigset_t()
          sigemptyset(&one)
          sigaddset(&one, sig)
          signal(sig, SIG_DFL)
          pthread_sigmask(SIG_UNBLOCK, &one, nil)
          raise(sig)
          continue
        }
        StopSignal.request(sig)
      }
    }, nil)
    if rc == 0 { pthread_detach(thread) } else {
      // No watcher: take the signals on the handler again (better than ignoring a stop request).
      var set = StopSignal.signalSet()
      pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
  }
}

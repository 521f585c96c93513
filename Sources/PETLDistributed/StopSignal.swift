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
/// A stop file (`SWIFT_PETL_STOP_FILE`, set by `launch/slurm.sbatch`) is the same request made by the
/// batch shell, for the moment before any rank exists to receive a signal.
public enum StopSignal {
  public static let handled: [Int32] = [SIGUSR1, SIGTERM, SIGINT]
  /// The environment variable naming a file whose existence is a stop request.
  public static let stopFileVariable = "SWIFT_PETL_STOP_FILE"
  /// A stop request that came from the stop file rather than a signal.
  public static let stopFileRequest: Int32 = -1

  /// Installs the recording handlers (idempotent), then unblocks the signals: a signal that arrived
  /// while they were blocked across the OpenBLAS re-exec (`BLASCore`) is delivered to the handler now.
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
    unblock()
  }

  /// For commands that do not stop gracefully: the default actions again; a stop signal already
  /// received acts now, as it would have without the handlers.
  public static func restoreDefaults() {
    for sig in handled { signal(sig, SIG_DFL) }
    if let sig = receivedSignal, sig > 0 { raise(sig) }
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

  private static func unblock() {
    var set = sigset_t()
    sigemptyset(&set)
    for sig in handled { sigaddset(&set, sig) }
    sigprocmask(SIG_UNBLOCK, &set, nil)
  }
}

import Foundation
import Synchronization

/// The first stop signal received while a `StopSignal` is installed (0: none). A lock-free atomic is
/// one of the few things a signal handler may touch.
private let pendingStopSignal = Atomic<Int32>(0)
/// How many `StopSignal`s are installed (they nest: the grid command's around the coordinator's).
private let installed = Atomic<Int>(0)

/// Turns SIGUSR1, SIGTERM and SIGINT into a "stop handing out work" flag while a grid runs.
///
/// Slurm's `--signal=USR1@N` warns a job before its time limit, SIGTERM comes first when a job is
/// cancelled or preempted, and mpirun forwards SIGUSR1 to its ranks. The default action of all three
/// kills the process and would lose the cells in flight; while a `StopSignal` is installed they only
/// record themselves, and the running cells go on to their end and are journaled. One grid (so one
/// `StopSignal`) runs at a time per process.
public final class StopSignal: @unchecked Sendable {
  public static let handled: [Int32] = [SIGUSR1, SIGTERM, SIGINT]
  private var previous: [Int32: sigaction] = [:]
  private var active = false

  /// Installs the handlers; `cancel()` restores the previous actions. The outermost `StopSignal`
  /// clears any earlier signal; a nested one keeps what the outer one recorded: the grid command
  /// installs one before it loads the model, so a time-limit warning that arrives during start-up
  /// still stops the grid cleanly (exit 75) instead of killing the ranks.
  public init() {
    if installed.add(1, ordering: .sequentiallyConsistent).oldValue == 0 {
      pendingStopSignal.store(0, ordering: .sequentiallyConsistent)
    }
    active = true
    for sig in Self.handled {
      var action = sigaction()
      action.__sigaction_handler.sa_handler = { sig in
        _ = pendingStopSignal.compareExchange(expected: 0, desired: sig, ordering: .sequentiallyConsistent)
      }
      sigemptyset(&action.sa_mask)
      action.sa_flags = SA_RESTART
      var old = sigaction()
      sigaction(sig, &action, &old)
      previous[sig] = old
    }
  }

  /// The first signal received, if any.
  public var receivedSignal: Int32? {
    let sig = pendingStopSignal.load(ordering: .sequentiallyConsistent)
    return sig == 0 ? nil : sig
  }

  /// Records `sig` as a signal would (a group leader reported a signal that reached only its rank).
  public func request(_ sig: Int32) {
    _ = pendingStopSignal.compareExchange(expected: 0, desired: sig, ordering: .sequentiallyConsistent)
  }

  /// Restores the actions the signals had before; safe to call twice.
  public func cancel() {
    if active { installed.subtract(1, ordering: .sequentiallyConsistent); active = false }
    for (sig, old) in previous {
      var action = old
      sigaction(sig, &action, nil)
    }
    previous = [:]
  }

  deinit { cancel() }

  /// The signal's name for log lines, e.g. `SIGUSR1`.
  public static func name(_ sig: Int32) -> String {
    switch sig {
    case SIGUSR1: return "SIGUSR1"
    case SIGTERM: return "SIGTERM"
    case SIGINT: return "SIGINT"
    default: return "signal \(sig)"
    }
  }
}

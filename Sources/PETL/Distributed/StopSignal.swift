import Dispatch
import Foundation

/// Turns SIGUSR1, SIGTERM and SIGINT into a "stop handing out work" flag while a grid runs.
///
/// Slurm's `--signal=USR1@N` warns a job before its time limit, and SIGTERM comes first when a job is
/// cancelled or preempted; the default action of all three kills the process and would lose the cells
/// in flight. While a `StopSignal` is alive those signals only set the flag; the cells that run go on
/// to their end and are journaled. Handled through Dispatch signal sources, so no Swift code runs in
/// an async-signal context.
public final class StopSignal: @unchecked Sendable {
  public static let handled: [Int32] = [SIGUSR1, SIGTERM, SIGINT]

  private let lock = NSLock()
  private var received: Int32? = nil
  private var sources: [DispatchSourceSignal] = []
  private let queue = DispatchQueue(label: "swift-petl.stop-signal")

  /// Installs the handlers; `cancel()` restores the default actions.
  public init() {
    for sig in Self.handled {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
      source.setEventHandler { [weak self] in self?.record(sig) }
      source.resume()
      sources.append(source)
    }
  }

  /// The first signal received, if any.
  public var receivedSignal: Int32? {
    lock.lock(); defer { lock.unlock() }
    return received
  }

  /// Sets the flag as a signal would (a worker reported a signal that reached only its own rank).
  public func request(_ sig: Int32) { record(sig) }

  private func record(_ sig: Int32) {
    lock.lock(); defer { lock.unlock() }
    if received == nil { received = sig }
  }

  /// Removes the handlers; the signals get their default actions back.
  public func cancel() {
    for source in sources { source.cancel() }
    sources = []
    for sig in Self.handled { signal(sig, SIG_DFL) }
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

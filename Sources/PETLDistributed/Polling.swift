import Foundation

/// Waits for a non-blocking MPI operation by testing it with growing sleeps in between.
///
/// Open MPI's blocking calls busy-spin while they wait. A rank that waits minutes for another group's
/// cell (or a coordinator waiting for results) would steal a core from training; polling with a sleep
/// of at most `maxSleep` costs next to nothing and adds at most that much latency.
package struct Poller {
  var sleepMicroseconds: UInt32 = 20

  package init() {}
  let maxSleepMicroseconds: UInt32 = 5_000

  /// Sleeps a little longer each time it is called without progress.
  package mutating func pause() {
    usleep(sleepMicroseconds)
    sleepMicroseconds = min(sleepMicroseconds * 2, maxSleepMicroseconds)
  }
}

import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The engine's only worker threads. Every parallel phase of a step (GEMM pieces, element-wise
/// kernels, attention pairs) runs on these, with OpenBLAS itself held at one thread.
///
/// Why not OpenBLAS's own pool: its workers spin in `sched_yield` for ~0.1 s after each GEMM, so
/// during the element-wise phases between GEMMs they compete with any other worker for the same
/// cores, and a spinning thread takes a core from the GEMM that runs beside it. One
/// pool that owns the cores removes that fight: between phases a worker spins briefly on an atomic
/// (a step's phases come back to back), then parks on a condition variable so an idle rank costs
/// nothing.
final class WorkerPool: @unchecked Sendable {
  /// Participants in a job, the calling thread included.
  let size: Int
  private let generation = Atomic<Int>(0)
  private let pending = Atomic<Int>(0)
  private let sleepers = Atomic<Int>(0)
  private let busy = Atomic<Bool>(false)
  /// The current job: a pointer to the caller's closure, valid while `pending` > 0.
  private nonisolated(unsafe) var job: UnsafeRawPointer?
  private let lock: UnsafeMutablePointer<pthread_mutex_t>
  private let wake: UnsafeMutablePointer<pthread_cond_t>
  /// Spins (atomic loads) before a worker parks: longer than the gap between a step's phases, far
  /// shorter than the gap between steps.
  private static let spinLimit = 1 << 17

  typealias Body = (Int) -> Void

  init(size: Int) {
    self.size = max(1, size)
    lock = .allocate(capacity: 1); pthread_mutex_init(lock, nil)
    wake = .allocate(capacity: 1); pthread_cond_init(wake, nil)
    for index in 1..<self.size {
      let t = Thread { [unowned self] in self.workerLoop(index) }
      t.name = "petl-worker-\(index)"
      t.stackSize = 1 << 20
      t.start()
    }
  }

  /// Runs body(0) on the caller and body(1..<size) on the workers; returns when all are done.
  /// Returns false, running nothing, when the pool is already running a job (a nested or
  /// concurrent call): the caller then does the work itself.
  func run(_ body: Body) -> Bool {
    guard size > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
      return false
    }
    withoutActuallyEscaping(body) { escapable in
      withUnsafePointer(to: escapable) { ptr in
        job = UnsafeRawPointer(ptr)
        pending.store(size - 1, ordering: .relaxed)
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
          pthread_mutex_lock(lock); pthread_cond_broadcast(wake); pthread_mutex_unlock(lock)
        }
        ptr.pointee(0)
        while pending.load(ordering: .acquiring) > 0 {}
        job = nil
      }
    }
    busy.store(false, ordering: .releasing)
    return true
  }

  private func workerLoop(_ index: Int) {
    var seen = 0
    while true {
      var spins = 0
      var g = generation.load(ordering: .acquiring)
      while g == seen {
        spins += 1
        if spins > Self.spinLimit {
          pthread_mutex_lock(lock)
          sleepers.add(1, ordering: .sequentiallyConsistent)
          while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(wake, lock) }
          sleepers.subtract(1, ordering: .sequentiallyConsistent)
          pthread_mutex_unlock(lock)
          spins = 0
        }
        g = generation.load(ordering: .acquiring)
      }
      seen = g
      call(index)
      pending.subtract(1, ordering: .releasing)
    }
  }

  /// Separate frame so the closure's retain is released before the job is signalled done.
  @inline(never)
  private func call(_ index: Int) {
    job!.assumingMemoryBound(to: Body.self).pointee(index)
  }
}

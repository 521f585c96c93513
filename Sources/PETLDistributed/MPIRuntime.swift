import CMPI
import Foundation
import PETLSupport

/// MPI's process-wide state: initialised at most once (MPI cannot be re-initialised after finalize) and
/// finalized at most once. Every `Communicator` entry point goes through `Communicator.world()`, so no
/// MPI call can run before init.
enum MPIRuntime {
  private static let lock = NSLock()
  nonisolated(unsafe) private static var state: State = .fresh

  private enum State { case fresh, running, finalized }

  /// Initialises MPI with `MPI_THREAD_MULTIPLE` (the grid coordinator runs beside the trainer on rank 0).
  /// Without mpirun this is an MPI singleton of size 1.
  static func start() throws {
    lock.lock(); defer { lock.unlock() }
    switch state {
    case .running: return
    case .finalized: throw PETLError("MPI was already finalized in this process; it cannot start again")
    case .fresh: break
    }
    let env = ProcessInfo.processInfo.environment
    try LaunchCheck.beforeInit(environment: env)
    var provided: Int32 = 0
    let rc = MPI_Init_thread(nil, nil, Int32(MPI_THREAD_MULTIPLE), &provided)
    guard rc == MPI_SUCCESS else { throw PETLError("MPI_Init_thread failed with code \(rc)") }
    state = .running
    guard provided >= Int32(MPI_THREAD_MULTIPLE) else {
      throw PETLError("this MPI library gives thread level \(provided), not MPI_THREAD_MULTIPLE (3)")
    }
    var size: Int32 = 0
    MPI_Comm_size(cmpi_comm_world(), &size)
    try LaunchCheck.afterInit(environment: env, mpiSize: Int(size))
  }

  /// True between a successful start and finalize: communicators may only be freed then.
  static var isRunning: Bool {
    lock.lock(); defer { lock.unlock() }
    return state == .running
  }

  /// `MPI_Finalize` if MPI was started and not yet finalized. Under mpirun a rank that exits without it
  /// makes mpirun report the job as "exiting improperly" and fail.
  static func finalize() {
    lock.lock(); defer { lock.unlock() }
    guard state == .running else { return }
    MPI_Finalize()
    state = .finalized
  }
}

import PETLSupport

/// Start-up checks that the MPI world is the one the launcher meant to start.
///
/// The classic failure: `srun` without a working PMI/PMIx plugin starts N copies that each believe they
/// are rank 0 of a world of 1, and every copy then trains the whole grid. Comparing what the launcher
/// says (its environment) with what MPI says catches that before any work is done.
public enum LaunchCheck {
  /// Checks made before `MPI_Init`: a task started by `srun` with more than one task in its step but
  /// with neither Open MPI's launcher variables nor a PMIx rank cannot join a world, and Open MPI's own
  /// message for that case does not say what to do.
  public static func beforeInit(environment env: [String: String]) throws {
    let launchedByOpenMPI = env["OMPI_COMM_WORLD_SIZE"] != nil
    let hasPMIx = env["PMIX_RANK"] != nil
    guard !launchedByOpenMPI, !hasPMIx, env["SLURM_PROCID"] != nil,
          let tasks = slurmTaskCount(env), tasks > 1, env["SLURM_STEP_ID"] != nil
    else { return }
    throw srunWithoutPMI(tasks: tasks)
  }

  /// Checks made after `MPI_Init` against the size MPI reports.
  public static func afterInit(environment env: [String: String], mpiSize: Int) throws {
    if let text = env["OMPI_COMM_WORLD_SIZE"] {
      guard let expected = Int(text) else {
        throw PETLError("OMPI_COMM_WORLD_SIZE is '\(text)', not a number: check the launch environment")
      }
      guard expected == mpiSize else {
        throw PETLError("MPI world has \(mpiSize) rank(s) but OMPI_COMM_WORLD_SIZE says \(expected): "
          + "the launch did not form one MPI world (stale OMPI_* variables in the environment?)")
      }
      return
    }
    if env["SLURM_PROCID"] != nil, env["SLURM_STEP_ID"] != nil, let tasks = slurmTaskCount(env),
       tasks > 1, mpiSize == 1 {
      throw srunWithoutPMI(tasks: tasks)
    }
  }

  /// Tasks in the current step: `SLURM_STEP_NUM_TASKS` inside an `srun` step, else `SLURM_NTASKS`.
  static func slurmTaskCount(_ env: [String: String]) -> Int? {
    env["SLURM_STEP_NUM_TASKS"].flatMap { Int($0) } ?? env["SLURM_NTASKS"].flatMap { Int($0) }
  }

  static func srunWithoutPMI(tasks: Int) -> PETLError {
    PETLError("started by srun as one of \(tasks) tasks, but MPI sees a world of 1 (srun without PMI): "
      + "launch with 'srun --mpi=pmix' or with mpirun")
  }
}

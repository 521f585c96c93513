import ArgumentParser
import Foundation
import PETLDistributed

/// `swift-petl mpi-check`: validates a launch (mpirun, srun, sbatch) before a grid is trusted to it.
struct MPICheckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "mpi-check",
    abstract: "Check the MPI launch: world size, hosts, all-reduce, a --dp split and point-to-point messages.",
    discussion: "Exits non-zero on any mismatch. Run it with the same launcher and rank count as the grid.")

  @Option(name: .long, help: "Ranks per data-parallel group to check (must divide the world size).")
  var dp: Int = 1

  func run() throws {
    let world = try Communicator.world()
    let failures = MPICheck.run(world: world, dp: dp, report: { print($0) }, problem: { line in
      FileHandle.standardError.write(Data((line + "\n").utf8))
    })
    if failures > 0 { throw ExitCode.failure }
  }
}

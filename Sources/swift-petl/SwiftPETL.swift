import ArgumentParser
import Foundation
import PETLKernels
import PETLDistributed
import PETLStudy

@main
struct SwiftPETL: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "swift-petl",
    abstract: "Which transformer modules are winning tickets? Parameter-efficient fine-tuning study on CPU clusters.",
    subcommands: [GridCommand.self, TrainCommand.self, PredictCommand.self, ExportCommand.self, ReportCommand.self, MagnitudesCommand.self,
                  InspectCommand.self, TokenizeCommand.self, EmbedCommand.self, BenchCommand.self, MPICheckCommand.self,
                  CommBenchCommand.self, SimulateCommand.self],
    defaultSubcommand: GridCommand.self)

  /// Subcommands that run no GEMMs: no re-exec and no notice (their output stays exactly theirs).
  static let commandsWithoutBLAS: Set<String> = ["mpi-check", "comm-bench", "simulate", "report", "tokenize", "export", "help",
                                                  "--help", "-h"]

  /// Stop requests are recorded from the first instruction (a Slurm warning may land while the ranks
  /// start); OpenBLAS is then put on its fast kernel (possibly re-executing). Every error ends the
  /// process, and under MPI the whole job, here: never through `MPI_Finalize` while other ranks wait.
  static func main() {
    StopSignal.install()
    // No arguments at all is the default command (the grid), which needs BLAS most.
    if !commandsWithoutBLAS.contains(CommandLine.arguments.dropFirst().first ?? "") {
      BLASCore.ensureFastKernel(arguments: CommandLine.arguments)
    }
    var command: ParsableCommand
    do { command = try parseAsRoot() } catch { exit(withError: error) }
    if !(command is GridCommand) { StopSignal.restoreDefaults() }
    do {
      try command.run()
    } catch let code as ExitCode where code.rawValue == GridSummary.resumableExitCode {
      // Every rank received the same summary and exits alike: finalizing together is safe.
      Communicator.finalize()
      Foundation.exit(code.rawValue)
    } catch {
      // With MPI running, other ranks (or this rank's coordinator thread) may be inside MPI: end the
      // job from here, never through MPI_Finalize.
      if Communicator.runningWorldSize != nil {
        let text = message(for: error)
        let code = (error as? ExitCode)?.rawValue ?? 1
        Communicator.failJob(text.isEmpty ? "\(command is MPICheckCommand ? "mpi-check" : "command") failed (exit code \(code))" : text,
                             code: code == 0 ? 1 : code)
      }
      exit(withError: error)
    }
    Communicator.finalize()
  }
}

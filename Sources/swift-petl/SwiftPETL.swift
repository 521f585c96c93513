import ArgumentParser
import PETL

@main
struct SwiftPETL: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "swift-petl",
    abstract: "Which transformer modules are winning tickets? Parameter-efficient fine-tuning study on CPU clusters.",
    subcommands: [GridCommand.self, TrainCommand.self, PredictCommand.self, ReportCommand.self, MagnitudesCommand.self,
                  InspectCommand.self, TokenizeCommand.self, EmbedCommand.self, BenchCommand.self, MPICheckCommand.self],
    defaultSubcommand: GridCommand.self)

  /// Re-executes once with OPENBLAS_CORETYPE set when OpenBLAS fell back to a generic kernel.
  static func main() {
    BLASCore.ensureFastKernel()
    main(nil)
  }
}

import ArgumentParser
import PETL

@main
struct SwiftPETL: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "swift-petl",
    abstract: "Which transformer modules are winning tickets? Parameter-efficient fine-tuning study on CPU clusters.",
    subcommands: [GridCommand.self, TrainCommand.self, PredictCommand.self, InspectCommand.self, EmbedCommand.self, MagnitudesCommand.self, TokenizeCommand.self, ReportCommand.self, MPICheckCommand.self],
    defaultSubcommand: GridCommand.self)
}

import ArgumentParser
import Foundation
import PETLModel
import PETLStudy

/// `swift-petl magnitudes`: weight magnitudes per module type and layer, and with adapters how far
/// fine-tuning moved each module.
struct MagnitudesCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "magnitudes",
    abstract: "Magnitude statistics (mean |w|, RMS, max) per module type and layer; with adapters, relative change.")

  @OptionGroup var modelFlag: ModelFlag
  @Option(parsing: .upToNextOption, help: "Adapter files (train --save-adapter, grid --save-adapters).") var adapter: [String] = []
  @Option(help: "Output folder.") var output: String = "results/magnitudes"

  func run() throws {
    let adapters = adapter.map { path in
      let url = URL(fileURLWithPath: path)
      return (name: url.deletingPathExtension().lastPathComponent, url: url)
    }
    let config = try modelFlag.config()
    let mags = try Magnitudes(modelDirectory: modelFlag.url, config: config, adapters: adapters)
    let files = try mags.write(to: URL(fileURLWithPath: output), layers: config.numHiddenLayers)
    print(mags.markdown())
    for f in files { print("wrote \(f.path)") }
  }
}

import ArgumentParser
import Foundation
import PETL

/// `swift-petl magnitudes`: weight magnitudes per module type and layer, and with adapters how far
/// fine-tuning moved each module.
struct MagnitudesCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "magnitudes",
    abstract: "Magnitude statistics (mean |w|, RMS, max) per module type and layer; with adapters, relative change.")

  @Option(help: "HuggingFace BERT folder.") var model: String = "models/all-MiniLM-L6-v2"
  @Option(parsing: .upToNextOption, help: "Adapter files (train --save-adapter, grid --save-adapters).") var adapter: [String] = []
  @Option(help: "Output folder.") var output: String = "results/magnitudes"

  func run() throws {
    let dir = URL(fileURLWithPath: model)
    let (base, _) = try BertModel.load(directory: dir, numLabels: 2)
    var tuned: [(name: String, model: BertModel, touched: Set<String>)] = []
    for path in adapter {
      let url = URL(fileURLWithPath: path)
      let labels = Int((try SafeTensors.open(url)).info("classifier.weight")?.shape.first ?? 2)
      let (m, _) = try BertModel.load(directory: dir, numLabels: labels)
      let names = try AdapterFile.load(url, into: m)
      tuned.append((url.deletingPathExtension().lastPathComponent, m, Set(names)))
    }
    let mags = Magnitudes(base: base, tuned: tuned)
    let files = try mags.write(to: URL(fileURLWithPath: output), layers: base.dims.layers)
    print(mags.markdown())
    for f in files { print("wrote \(f.path)") }
  }
}

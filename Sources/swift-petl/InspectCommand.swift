import ArgumentParser
import Foundation
import PETLModel
import PETLText
import PETLTraining

/// `swift-petl inspect`: what a checkpoint holds, in the study's terms: its family, how the study's
/// module axis maps onto the family's tensor names, and parameters per module type and layer with
/// their share of the whole model.
struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Show a model's family, config, module names and parameter counts by module type and layer.")

  @Option(help: "Labels of the classification head counted in the total.") var numLabels: Int = 2
  @OptionGroup var modelFlag: ModelFlag

  func run() throws {
    let dir = modelFlag.url, config = try modelFlag.config()
    // The tokenizer's ids must fit the word-embedding table (checked as it loads); a folder may hold
    // the model alone.
    let vocabFile = config.family.tokenizer == .byteLevelBPE ? "vocab.json" : "vocab.txt"
    let tokenizer = FileManager.default.fileExists(atPath: dir.appendingPathComponent(vocabFile).path)
      ? try loadTokenizer(modelDirectory: dir, config: config) : nil
    let (m, report) = try EncoderModel.load(directory: dir, config: config, numLabels: numLabels)
    let d = m.dims, layout = m.layout, family = d.family
    print("model: \(dir.path)")
    print("family: \(family.rawValue) (checkpoint prefix '\(family.checkpointPrefix)', head as \(family.sequenceClassificationClass))")
    let embedding = d.projectsEmbeddings ? ", embedding \(d.embedding) projected to \(d.hidden)" : ""
    print("config: \(d.layers) layers, hidden \(d.hidden), \(d.heads) heads, intermediate \(d.intermediate)\(embedding), vocab \(d.vocabSize), max positions \(d.maxPositions), type vocab \(d.typeVocab), layer_norm_eps \(config.layerNormEps), dropout \(config.hiddenDropoutProb)/\(config.attentionProbsDropoutProb)")
    let tokenizerFiles = family.tokenizer == .byteLevelBPE ? "byte-level BPE (vocab.json + merges.txt)" : "WordPiece (vocab.txt)"
    print("tokenizer: \(tokenizerFiles), " + (tokenizer.map { "\($0.vocabularySize) of the \(d.vocabSize) ids" } ?? "\(vocabFile) not in the folder"))
    if !config.defaulted.isEmpty {
      print("config.json leaves out \(config.defaulted.joined(separator: ", ")): transformers' defaults used")
    }
    if let summary = report.summary { print("checkpoint: " + summary) }
    if let msg = report.message { print(msg) }
    print("module names (layer 0; the checkpoint adds '\(family.checkpointPrefix)'):")
    for kind in ModuleKind.allCases {
      let paths = layout.slots.filter { $0.module == kind && ($0.layer ?? 0) == 0 }.map { layout.modulePath(of: $0) }
      var unique: [String] = []
      for p in paths where !unique.contains(p) { unique.append(p) }
      print("  " + kind.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0) + (unique.isEmpty ? "(none in this family)" : unique.joined(separator: ", ")))
    }
    print("parameters: \(layout.count) (head of \(numLabels) labels included)")
    func pct(_ n: Int) -> String { String(format: "%8.4f%%", 100 * Double(n) / Double(layout.count)) }
    func row(_ name: String, _ cells: [String]) { print(name.padding(toLength: 14, withPad: " ", startingAt: 0) + cells.joined()) }
    row("module", (0..<d.layers).map { "layer \($0)".leftPad(11) } + ["all layers".leftPad(13), "% of model".leftPad(12)])
    for kind in ModuleKind.allCases {
      let total = layout.range(of: kind).count
      guard total > 0 else { continue }
      let perLayer = kind.isPerLayer ? (0..<d.layers).map { String(layout.range(of: kind, layer: $0).count).leftPad(11) }
                                     : Array(repeating: "-".leftPad(11), count: d.layers)
      row(kind.rawValue, perLayer + [String(total).leftPad(13), pct(total).leftPad(12)])
    }
    let ln = try TrainableSet(modules: [.layernorm], layers: .indices([0]), layout: layout).count
      - (try TrainableSet(modules: [.classifier], layers: .all, layout: layout).count)
    print("one layer's LayerNorms: \(ln) parameters (\(pct(ln).trimmingCharacters(in: .whitespaces)))")
  }
}

extension String {
  func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

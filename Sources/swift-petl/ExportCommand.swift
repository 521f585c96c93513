import ArgumentParser
import Foundation
import PETLModel
import PETLData
import PETLSupport

/// `swift-petl export`: a result back into transformers. The base model with an adapter applied
/// becomes a folder that `AutoModelForSequenceClassification.from_pretrained` loads with no missing
/// or unexpected key and that predicts what `predict` does; `--peft` adds the adapter as PEFT's LN
/// tuning when it holds only LayerNorms and the head.
struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write the model with an adapter applied as a transformers *ForSequenceClassification folder.",
    discussion: """
      OUTPUT gets model.safetensors (the family's *ForSequenceClassification names), config.json (the \
      model's, plus architectures, id2label, label2id and problem_type from the task) and the model \
      folder's tokenizer files. It is written beside OUTPUT and renamed into place when complete; \
      OUTPUT must not exist or be empty. With --peft, OUTPUT/peft holds the adapter as PEFT's LN tuning, \
      or for a LoRA adapter (train --method lora) as PEFT's LoRA (peft \(PEFTExport.peftVersion)): \
      PeftModel.from_pretrained(base, OUTPUT/peft). A LoRA adapter is merged into the weights of OUTPUT.
      """)

  @OptionGroup var modelFlag: ModelFlag
  @Option(help: "Adapter file (train --save-adapter, grid --save-adapters): applied over the model's weights.") var adapter: String
  @Option(help: "The task the adapter was trained for: its labels name the outputs (a built-in task or a task folder).") var task: String
  @Option(help: "New folder to write (absent or empty).") var output: String
  @Flag(help: "Also write OUTPUT/peft: the adapter as PEFT LN tuning (LayerNorm-only adapters) or PEFT LoRA (LoRA adapters).") var peft = false

  func run() throws {
    // The one place export resolves --task: a built-in name or the user's task folder.
    var catalog = TaskCatalog()
    let t = try catalog.resolve(task, flag: "--task")
    let labels: ExportLabels = t.isRegression ? .regression : .classification(t.labelNames)
    let config = try modelFlag.config()
    let adapterURL = URL(fileURLWithPath: adapter)
    try checkAdapterMetadata(adapterURL, task: t)
    let (base, report) = try EncoderModel.load(directory: modelFlag.url, config: config, numLabels: t.numLabels)
    let (model, loaded) = try AdapterFile.apply(adapterURL, to: base)
    let isLoRA = model.layout.lora != nil
    // A head the checkpoint lacked and the adapter does not hold would be exported random.
    let fresh = model.layout.slots.filter { report.initialized.contains(model.layout.modulePath(of: $0)) }.map(\.name)
    if let missing = fresh.first(where: { !loaded.contains($0) }) {
      throw PETLError("\(adapter): has no '\(shown(missing))' and \(modelFlag.model)/model.safetensors none either: the export would hold a random head")
    }
    let peftPlan = !peft ? nil : isLoRA ? try PEFTExport.loraPlan(layout: model.layout, adapterTensors: loaded, source: "--peft: \(adapter)")
      : try PEFTExport.plan(layout: model.layout, adapterTensors: loaded, source: "--peft: \(adapter)")

    let folder = try StagedFolder(destination: URL(fileURLWithPath: output).standardizedFileURL, flag: "--output")
    let written: SequenceClassificationExport.Written
    do {
      // LoRA: the adapters merged into their weights, W + (alpha/R)·B·A (PEFT's merge_and_unload)
      written = try SequenceClassificationExport.write(isLoRA ? model.mergedLoRA() : model, modelDirectory: modelFlag.url, labels: labels, into: folder.staging,
                                                       metadata: ["swift_petl.task": t.name])
      if let peftPlan {
        let peftFolder = folder.staging.appendingPathComponent("peft")
        try FileManager.default.createDirectory(at: peftFolder, withIntermediateDirectories: false)
        let baseModel = modelFlag.url.standardizedFileURL.path
        if isLoRA {
          try PEFTExport.writeLoRA(peftPlan, model: model, baseModel: baseModel, into: peftFolder)
        } else {
          try PEFTExport.write(peftPlan, model: model, baseModel: baseModel, into: peftFolder)
        }
      }
      try folder.commit()
    } catch {
      folder.discard()
      throw error
    }
    // Only once exported: a refused export prints its one error line and nothing else.
    if let summary = report.summary { print("checkpoint: " + summary) }
    print("exported: \(folder.destination.path) (\(config.family.sequenceClassificationClass), \(written.tensors) tensors, "
          + "labels \(labels.names.joined(separator: ", ")); tokenizer: \(written.tokenizerFiles.joined(separator: ", ")))")
    if let peftPlan {
      let what = isLoRA ? "LoRA r=\(model.layout.lora!.rank) on \(peftPlan.targetModules.count) linear layers"
        : "LN tuning of \(peftPlan.targetModules.count) LayerNorms"
      print("peft: \(folder.destination.path)/peft (\(what), modules_to_save \(peftPlan.modulesToSave.joined(separator: ", ")))")
    }
  }

  /// An adapter records its task and head width (`AdapterFile.save`); a mismatch would export a
  /// head under the wrong labels, so it is refused before any weights are read.
  func checkAdapterMetadata(_ url: URL, task t: TaskDescriptor) throws {
    guard FileManager.default.fileExists(atPath: url.path) else { throw PETLError("\(url.path): no such adapter file") }
    let meta = try SafeTensors.open(url).metadata
    if let trained = meta["swift_petl.task"], trained != t.name, trained != task {
      throw PETLError("\(url.path): trained for task '\(shown(trained))', not '\(task)' (--task)")
    }
    if let n = meta["swift_petl.num_labels"], n != String(t.numLabels) {
      throw PETLError("\(url.path): head of \(shown(n)) outputs, task \(task) has \(t.numLabels)")
    }
  }
}

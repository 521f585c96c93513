/// Named study designs. A preset fills every flag the user did not give; a flag the user gives wins.
public struct Preset: Sendable {
  public var name: String
  public var tasks: [String]
  /// Module-wise cells (layers `all`): the paper's first table plus the baselines.
  public var moduleWise: [String]
  /// Layer-wise cells (one per layer): the paper's second table.
  public var layerWise: [String]
  public var seeds: [UInt64]
  /// Learning rates per module family, chosen on dev (nil: one default rate per family).
  public var learningRates: (@Sendable (_ modules: [String]) -> [Double])?
  /// Random-subset controls: the counts of scalars to train (each its own cell).
  public var randomCounts: [Int]
  public var options: TrainOptions

  /// The paper's module types (PEFT names) as the study runs them.
  public static let paperModules = ["query", "key", "value", "attn_out", "intermediate", "output", "layernorm"]

  /// `quick`: the whole design of the paper on the embedded default (rt-vader) at one seed and one
  /// learning rate per family, sized for a laptop-class machine: every module type module-wise and in
  /// every layer, full fine-tuning, BitFit, the head alone, and the random control matched to one
  /// layer's LayerNorms and to all of them. The frozen-prefix cache is on (the frozen layers below a
  /// layer-wise cell run without dropout), which makes the layer-wise half several times cheaper.
  public static func quick(layerNormCountOneLayer: Int, layers: Int) -> Preset {
    var o = TrainOptions()
    o.epochs = 2
    o.maxTrain = 2000
    o.maxEval = 500
    o.maxLength = 64
    o.batchSize = 32
    o.prefixCache = true
    return Preset(name: "quick", tasks: ["rt-vader"],
                  moduleWise: ["full", "bias", "classifier"] + paperModules + ["random"],
                  layerWise: paperModules, seeds: [1], learningRates: nil,
                  randomCounts: [layerNormCountOneLayer, layerNormCountOneLayer * layers], options: o)
  }

  /// `paper`: the GLUE tasks found in the data folder, learning rates chosen on dev from a small grid
  /// per module family, several seeds (five for small tasks, three otherwise), batch 32, max length
  /// 128, AdamW with 6% warmup and linear decay, 3 epochs.
  public static func paper(tasks: [String]) -> Preset {
    var o = TrainOptions()
    o.epochs = 3
    o.maxLength = 128
    o.batchSize = 32
    return Preset(name: "paper", tasks: tasks, moduleWise: ["full", "bias", "classifier"] + paperModules + ["random"],
                  layerWise: paperModules, seeds: [1, 2, 3], learningRates: paperLearningRates,
                  randomCounts: [], options: o)
  }

  /// The paper preset's learning-rate grid per family.
  public static func paperLearningRates(_ modules: [String]) -> [Double] {
    if modules.contains(where: { ModuleCatalog.whole.contains($0) }) { return [1e-5, 2e-5, 5e-5] }
    if modules.contains(where: { ModuleCatalog.matrices.contains($0) }) { return [5e-5, 2e-4, 1e-3] }
    return [1e-4, 1e-3, 1e-2]
  }

  /// GLUE tasks small enough to need more seeds (the paper's low-resource tasks).
  public static let smallTasks: Set<String> = ["rte", "mrpc", "stsb", "cola", "wnli"]
}

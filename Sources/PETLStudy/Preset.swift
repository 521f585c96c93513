import PETLTraining

/// Named study designs. A preset fills every flag the user did not give; a flag the user gives wins.
public struct Preset: Sendable {
  public var name: String
  public var tasks: [String]
  /// Module-wise cells (layers `all`): the paper's first table plus the baselines.
  public var moduleWise: [[TrainableModule]]
  /// Layer-wise cells (one per layer): the paper's second table.
  public var layerWise: [[TrainableModule]]
  public var seeds: [UInt64]
  /// Seeds for the small tasks (`smallTasks`), when the preset gives them more.
  public var smallTaskSeeds: [UInt64]?
  /// Learning-rate candidates per trainable set, chosen on dev (nil: one default rate per rate group);
  /// `layerWise` says whether the cell trains one layer (its optimum lies higher than all layers').
  public var learningRates: (@Sendable (_ modules: [TrainableModule], _ layerWise: Bool) -> [Double])?
  /// The search's hard bounds per trainable set: a rate chosen at an end of the candidates is
  /// challenged by the next one beyond it, up to these (nil: the candidates only).
  public var learningRateBounds: (@Sendable (_ modules: [TrainableModule]) -> [Double])?
  /// How the rates are chosen: false, one cell per rate (the report picks the best on dev); true,
  /// one cell that picks among them by successive halving (`LearningRateSearch`).
  public var selectLearningRate: Bool
  /// With `selectLearningRate`: the first seed's cell searches, the other seeds train at its choice.
  public var reuseRates: Bool
  /// Random-subset controls beside the module-wise cells: the counts of scalars to train (each its
  /// own cell), drawn from the whole encoder.
  public var randomCounts: [Int]
  /// The random control beside each layer-wise cell: this many scalars drawn from that layer only
  /// (nil: none).
  public var layerRandomCount: Int?
  public var options: TrainOptions
  /// LoRA cells (`TuningMethod.lora`) beside the module cells: sets with their adapters' rank.
  public var loraFamilies: [LoRAFamily] = []
  /// The options for the small tasks (`smallTasks`), when the preset trains them differently.
  public var smallTaskOptions: TrainOptions? = nil

  /// Sets trained with LoRA adapters of one rank, in all layers or in each layer. Alpha equals the
  /// rank (PEFT's scale alpha/r is 1), so cells of different ranks share one parametrisation and one
  /// set of learning-rate candidates.
  public struct LoRAFamily: Sendable {
    public var sets: [[TrainableModule]]
    public var layers: GridLayers
    public var rank: Int
  }

  /// The paper's module types (PEFT names) as the study runs them.
  public static let paperModules: [TrainableModule] = [.query, .key, .value, .attnOut, .intermediate, .output, .layernorm]
  /// The module-wise baselines: full fine-tuning, BitFit, the head alone.
  static let baselines: [[TrainableModule]] = [[.full], [.bias], [.classifier]]

  /// `quick`: the whole design of the paper on the embedded default (rt-vader), three seeds, sized for
  /// a laptop-class machine: every module type module-wise and in every layer, full fine-tuning,
  /// BitFit and the head alone; random controls matched to one layer's LayerNorms (from the whole
  /// encoder, and from each layer beside that layer's cells) and to all of them. Seed 1's cell of
  /// each (set, layers) chooses its learning rate on dev by successive halving, extended past an end
  /// of the candidates up to the rate group's bounds; seeds 2 and 3 train at that rate. At least
  /// `minSteps` updates (a small task gets more epochs); a collapsed run restarts from a fresh seed up
  /// to twice. The frozen-prefix cache is on (the frozen layers below a layer-wise cell run without
  /// dropout), which makes the layer-wise half several times cheaper. A small GLUE task (`smallTasks`)
  /// trains on all its examples in batches of 16 up to 128 tokens for at least
  /// `quickSmallTaskMinSteps` updates: on MRPC, several hundred updates left every set but full
  /// fine-tuning at the majority class. docs/study.md says what each choice rests on (the candidates
  /// on one seed's choices; the bounds are stated, not measured).
  public static func quick(layerNormCountOneLayer: Int, layers: Int) -> Preset {
    var o = TrainOptions()
    o.epochs = 2
    o.minSteps = quickMinSteps
    o.maxTrain = 2000
    o.maxEval = 500
    o.maxLength = 64
    o.batchSize = 32
    o.prefixCache = true
    o.restarts = 2
    var small = o
    small.maxTrain = nil
    small.maxLength = 128
    small.batchSize = 16
    small.minSteps = quickSmallTaskMinSteps
    var p = Preset(name: "quick", tasks: ["rt-vader"],
                  moduleWise: baselines + (paperModules + [.random]).map { [$0] },
                  layerWise: (paperModules + [.random]).map { [$0] }, seeds: [1, 2, 3], smallTaskSeeds: nil,
                  learningRates: { quickLearningRates($0, layerWise: $1) },
                  learningRateBounds: { quickLearningRateBounds($0) },
                  selectLearningRate: true, reuseRates: true,
                  randomCounts: [layerNormCountOneLayer, layerNormCountOneLayer * layers],
                  layerRandomCount: layerNormCountOneLayer, options: o)
    p.smallTaskOptions = small
    return p
  }

  /// The quick preset's least number of updates per cell.
  public static let quickMinSteps = 120
  /// The quick preset's least number of updates per cell on a small GLUE task (Mosbach et al.,
  /// ICLR 2021: failed runs on small tasks vanish with more updates, not with more seeds).
  public static let quickSmallTaskMinSteps = 1000

  /// The quick preset's candidates: a ladder around where each rate group's cells chose on rt-vader
  /// (one layer's parameters sit higher than all layers'), the random control a decade higher still.
  public static func quickLearningRates(_ modules: [TrainableModule], layerWise: Bool) -> [Double] {
    switch TrainableModule.RateGroup.of(modules) {
    case .whole: return [2e-5, 5e-5, 1e-4]
    case .matrix: return layerWise ? [3e-3, 1e-2, 3e-2] : [3e-4, 1e-3, 3e-3]
    case .vector: return layerWise ? [5e-3, 2e-2, 8e-2] : [1e-3, 5e-3, 2e-2]
    case .scattered: return [5e-2, 1e-1, 2e-1]
    }
  }

  /// The quick preset's hard bounds per rate group: past these a step is no longer a fine-tuning step
  /// (the whole model) or the search costs more than the cell.
  public static func quickLearningRateBounds(_ modules: [TrainableModule]) -> [Double] {
    switch TrainableModule.RateGroup.of(modules) {
    case .whole: return [5e-6, 1e-3]
    case .matrix: return [3e-5, 0.1]
    case .vector: return [1e-4, 0.5]
    case .scattered: return [5e-3, 2]
    }
  }

  /// The weight-matrix kinds LoRA adapts (PEFT's `target_modules` of the study).
  public static let loraModules: [TrainableModule] = [.query, .key, .value, .attnOut, .intermediate, .output]
  /// The `lora` preset's rank for its module x layer grid (PEFT's default r).
  public static let loraRank = 8

  /// `lora`: where LoRA should go, on the quick preset's task, budget, seeds and search. Each of the
  /// six weight-matrix kinds with LoRA adapters of rank `loraRank`, module-wise and in each layer,
  /// beside the same module trained in full (the same cells as the quick preset's); then at matched
  /// parameter counts: LoRA on query and value at the rank whose adapters hold as many scalars as all
  /// LayerNorms, beside the LayerNorms and as many random scalars; and the two common recipes,
  /// attention-only (query, value) against MLP-only (intermediate, output), at the smallest ranks that
  /// give both the same count (`matchedRanks`). Full fine-tuning and the head alone anchor the verdicts.
  public static func lora(hidden H: Int, intermediate I: Int, layers L: Int) -> Preset {
    var p = quick(layerNormCountOneLayer: 4 * H, layers: L)
    p.name = "lora"
    p.moduleWise = [[.full], [.classifier], [.layernorm], [.random]] + loraModules.map { [$0] }
    p.layerWise = loraModules.map { [$0] }
    p.randomCounts = [4 * H * L]
    p.layerRandomCount = nil
    let (attention, mlp) = matchedRanks(hidden: H, intermediate: I)
    p.loraFamilies = [LoRAFamily(sets: loraModules.map { [$0] }, layers: .all, rank: loraRank),
                      LoRAFamily(sets: loraModules.map { [$0] }, layers: .each, rank: loraRank),
                      // 2 x (H + H) scalars per layer and rank: all LayerNorms' 4H per layer at rank 1
                      LoRAFamily(sets: [[.query, .value]], layers: .all, rank: 1),
                      LoRAFamily(sets: [[.query, .value]], layers: .all, rank: attention),
                      LoRAFamily(sets: [[.intermediate, .output]], layers: .all, rank: mlp)]
    return p
  }

  /// The smallest ranks at which LoRA on query+value (4H scalars per layer and rank) and on
  /// intermediate+output (2(H+I) per layer and rank) train the same number of scalars; when that
  /// needs more than rank 16 (widths without a small common multiple), rank 2 for the MLP and the
  /// nearest rank for attention, so the counts are close but not equal (the report prints both).
  public static func matchedRanks(hidden H: Int, intermediate I: Int) -> (attention: Int, mlp: Int) {
    let a = 4 * H, b = 2 * (H + I)
    func gcd(_ x: Int, _ y: Int) -> Int { y == 0 ? x : gcd(y, x % y) }
    let g = gcd(a, b)
    if b / g <= 16 { return (b / g, a / g) }
    return (max(1, Int((2 * Double(b) / Double(a)).rounded())), 2)
  }

  /// `paper`: the GLUE tasks found in the data folder, learning rates chosen on dev from a small grid
  /// per module family, several seeds (five for small tasks, three otherwise), batch 32, max length
  /// 128, AdamW with 6% warmup and linear decay, 3 epochs.
  public static func paper(tasks: [String]) -> Preset {
    var o = TrainOptions()
    o.epochs = 3
    o.maxLength = 128
    o.batchSize = 32
    return Preset(name: "paper", tasks: tasks, moduleWise: baselines + (paperModules + [.random]).map { [$0] },
                  layerWise: paperModules.map { [$0] }, seeds: [1, 2, 3], smallTaskSeeds: [1, 2, 3, 4, 5],
                  learningRates: { modules, _ in paperLearningRates(modules) }, learningRateBounds: nil,
                  selectLearningRate: false, reuseRates: false, randomCounts: [], layerRandomCount: nil, options: o)
  }

  /// The paper preset's learning-rate grid per rate group.
  public static func paperLearningRates(_ modules: [TrainableModule]) -> [Double] {
    switch TrainableModule.RateGroup.of(modules) {
    case .whole: return [1e-5, 2e-5, 5e-5]
    case .matrix: return [5e-5, 2e-4, 1e-3]
    case .vector, .scattered: return [1e-4, 1e-3, 1e-2]
    }
  }

  /// The options a task's cells start from, before the user's flags.
  public func options(_ task: String) -> TrainOptions {
    Self.smallTasks.contains(task) ? smallTaskOptions ?? options : options
  }

  /// The seeds a task's cells run with.
  public func seeds(_ task: String) -> [UInt64] {
    Self.smallTasks.contains(task) ? smallTaskSeeds ?? seeds : seeds
  }

  /// GLUE tasks small enough to need more seeds (the paper's low-resource tasks).
  public static let smallTasks: Set<String> = ["rte", "mrpc", "stsb", "cola", "wnli"]
}

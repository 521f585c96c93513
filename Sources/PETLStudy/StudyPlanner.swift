import Foundation
import PETLModel
import PETLData
import PETLTraining
import PETLSupport

/// The named study designs `grid --preset` takes.
public enum PresetName: String, CaseIterable, Sendable {
  case quick, paper, lora
}

/// How a cell's learning rate is chosen among several candidates (`grid --lr-selection`).
public enum LearningRateChoice: String, CaseIterable, Sendable {
  /// One cell per rate; the report takes the best on dev.
  case grid
  /// One cell that chooses by successive halving (`LearningRateSelection`).
  case halving
}

/// What a user asks of the grid: its flags, parsed (nil: the preset's value).
public struct StudyRequest: Sendable {
  public var preset: PresetName = .quick
  public var tasks: [String]?
  /// Module sets, each one family of cells (`[.query, .value]` trains both in one cell).
  public var modules: [[TrainableModule]]?
  /// Where `modules` train (all, each layer, listed layers); the preset's own sets ignore it.
  public var layers: GridLayers = .all
  public var seeds: [UInt64]?
  /// Rates for every cell (nil: the preset's candidates per family).
  public var learningRates: [Double]?
  public var selection: LearningRateChoice?
  /// With halving: whether the first seed's choice is reused by the other seeds (nil: the preset's).
  public var reuseRates: Bool?
  /// Scalars the `random` control trains.
  public var randomCount: Int?
  /// Match the `random` control to a set's size (`--match SET@LAYERS`).
  public var match: (set: [TrainableModule], layers: LayerSelection)?

  public init() {}
}

/// Turns a request into the grid's cells: the preset's design, the user's flags over it, the paper
/// preset's seed rule, random controls sized by `--random-count` or `--match`, duplicates removed,
/// every task and flag checked against the model before any rank trains.
public struct StudyPlanner {
  public let config: EncoderConfig
  public let modelDirectory: URL
  public let dataDirectory: URL
  /// The model's layout (two labels; the encoder's part is what sets are sized by).
  public let layout: ParameterLayout
  /// The tasks a request may name: built in, or resolved from the user's folders.
  public let tasks: TaskCatalog

  public init(config: EncoderConfig, modelDirectory: URL, dataDirectory: URL, tasks: TaskCatalog = TaskCatalog()) {
    self.config = config; self.modelDirectory = modelDirectory; self.dataDirectory = dataDirectory; self.tasks = tasks
    layout = ParameterLayout(dims: ModelDims(config: config, numLabels: 2))
  }

  /// - Parameter options: the training flags applied over the preset's options.
  public func plan(_ request: StudyRequest, options: (TrainOptions) throws -> TrainOptions) throws -> GridPlan {
    let L = config.numHiddenLayers
    var p = try preset(request)
    if let t = request.tasks { p.tasks = t }
    // Seeds, the least number of updates and collapse restarts belong to the preset's own design;
    // a grid of the user's own sets (`--modules`) takes them from its flags only (one seed by default).
    if request.modules != nil {
      p.seeds = [1]; p.smallTaskSeeds = nil
      p.options.minSteps = nil; p.options.restarts = 0
      p.smallTaskOptions?.minSteps = nil; p.smallTaskOptions?.restarts = 0
    }
    for t in p.tasks { _ = try tasks.named(t) }
    var counts = p.randomCounts, layerCounts = p.layerRandomCount.map { [$0] } ?? []
    if let k = request.randomCount { counts = [k]; layerCounts = [k] }
    if let m = request.match { counts = [try matchedCount(m.set, layers: m.layers)]; layerCounts = counts }
    let select = request.selection.map { $0 == .halving } ?? (p.selectLearningRate && request.learningRates == nil)
    // A family's LoRA rank: nil for module cells (or the method and rank the flags give).
    var families: [(sets: [[TrainableModule]], layers: GridLayers, counts: [Int], loraRank: Int?)] =
      [(p.moduleWise, .all, counts, nil), (p.layerWise, .each, layerCounts, nil)]
      + p.loraFamilies.map { ($0.sets, $0.layers, [], $0.rank) }
    if let m = request.modules { families = [(m, request.layers, counts, nil)] }
    var bases: [String: TrainOptions] = [:]
    for t in p.tasks {
      let base = try options(p.options(t))
      // The model's tables bound what the tasks may feed it: one error line now, on every rank alike.
      try config.checkInputs(task: tasks.named(t), maxLength: base.maxLength,
                             configPath: modelDirectory.appendingPathComponent("config.json").path)
      bases[t] = base
    }
    let modelName = modelDirectory.standardizedFileURL.lastPathComponent
    var cells: [PlannedCell] = [], notes: [String] = [], seen = Set<String>()
    for task in p.tasks {
      let taskSeeds = request.seeds ?? p.seeds(task)
      for (sets, layers, familyCounts, loraRank) in families {
        var familyBase = bases[task]!
        if let r = loraRank {
          familyBase.method = .lora; familyBase.loraRank = r; familyBase.loraAlpha = Double(r)
        }
        for set in sets {
          let rates = request.learningRates ?? p.learningRates?(set, layers != .all)
          // The preset's bounds fit the preset's candidates only; --lr-bounds (in `base`) fits any.
          let bounds = request.learningRates == nil ? p.learningRateBounds?(set) : nil
          for k in set.contains(.random) ? familyCounts.map(Optional.some) : [nil] {
            let plan = try GridPlan(tasks: [task], modules: [set], layers: layers, seeds: taskSeeds, learningRates: rates,
                                    selectLearningRate: select, reuseRates: request.reuseRates ?? p.reuseRates,
                                    bounds: bounds, base: familyBase, model: modelName, numLayers: L, randomCount: k)
            for c in plan.planned where seen.insert(c.id).inserted { cells.append(c) }
            for n in plan.notes where !notes.contains(n) { notes.append(n) }
          }
        }
      }
    }
    if cells.isEmpty { throw PETLError("the grid is empty") }
    // LoRA cells: a set LoRA cannot adapt, or a precision it does not run in, is one error line now
    for c in cells where c.spec.options.method == .lora {
      try c.spec.options.validate()  // LoRA in bf16: one line now, not a failed cell each
      _ = try c.spec.trainableSet(dims: layout.dims)
    }
    return GridPlan(planned: cells, notes: notes)
  }

  private func preset(_ request: StudyRequest) throws -> Preset {
    switch request.preset {
    case .quick:
      return .quick(layerNormCountOneLayer: 4 * config.hiddenSize, layers: config.numHiddenLayers)
    case .lora:
      return .lora(hidden: config.hiddenSize, intermediate: config.intermediateSize, layers: config.numHiddenLayers)
    case .paper:
      let found = TaskDescriptor.all.filter { $0.name != "rt-vader" && FileManager.default.fileExists(
        atPath: dataDirectory.appendingPathComponent($0.folder).appendingPathComponent("train.tsv").path) }
      guard !found.isEmpty || request.tasks != nil else {
        throw PETLError("--preset paper: no GLUE task folder with train.tsv under --data-dir \(dataDirectory.path)")
      }
      return .paper(tasks: found.map(\.name))
    }
  }

  /// `--match SET@LAYERS`: the scalars SET trains, without the head (both sides train the head).
  public func matchedCount(_ set: [TrainableModule], layers: LayerSelection) throws -> Int {
    let name = TrainableModule.name(set) + "@\(layers)"
    let trained = try TrainableSet(modules: set, layers: layers, layout: layout)
    let head = try TrainableSet(modules: [.classifier], layers: .all, layout: layout)
    guard trained.count > head.count else { throw PETLError("--match \(name): that set trains nothing beyond the head") }
    return trained.count - head.count
  }

  /// The plan as the grid prints it before it starts: cells and trainable scalars per set.
  public func describe(_ plan: GridPlan, ranks: Int, dp: Int) -> [String] {
    var lines = ["plan: \(plan.cells.count) cells on \(ranks) rank(s), data-parallel groups of \(dp)"]
    var bySet: [String: (cells: Int, params: Int)] = [:]
    var order: [String] = []
    for c in plan.cells {
      let lora = c.options.method == .lora ? "lora(r=\(c.options.loraRank)):" : ""
      let key = lora + TrainableModule.name(c.modules) + (c.layers == .all ? "@all" : "@layer") + (c.randomCount.map { "(\($0))" } ?? "")
      if bySet[key] == nil {
        let n = (try? c.trainableSet(dims: layout.dims).count) ?? 0
        order.append(key); bySet[key] = (0, n)
      }
      bySet[key]!.cells += 1
    }
    for k in order {
      let v = bySet[k]!
      let name = k.padding(toLength: max(k.count, 26), withPad: " ", startingAt: 0)
      lines.append("  " + name + String(format: " %3d cells %10d trainable (%.4f%% of %d)", v.cells, v.params,
                                         100 * Double(v.params) / Double(layout.count), layout.count))
    }
    return lines + plan.notes.map { "  note: \($0)" }
  }
}

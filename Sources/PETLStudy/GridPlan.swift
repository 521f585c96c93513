import PETLTraining
import PETLSupport
import Foundation

/// Which layers a grid covers. Unlike `train --layers 3,4` (one cell training layers 3 and 4 together),
/// a grid's list means layer-wise cells: one for layer 3, one for layer 4.
public enum GridLayers: Hashable, Sendable {
  /// One cell per module over all layers (the paper's module-wise table).
  case all
  /// One cell per layer 0..<L (the layer-wise table).
  case each
  /// One cell per listed layer.
  case list([Int])

  /// Parses `all`, `each` or `I[,I...]`.
  public static func parse(_ text: String, flag: String = "--layers") throws -> GridLayers {
    switch text.trimmingCharacters(in: .whitespaces) {
    case "all": return .all
    case "each": return .each
    default:
      switch try LayerSelection.parse(text, flag: flag) {
      case .all: return .all
      case .indices(let list): return .list(list)
      }
    }
  }
}

/// The default learning rate of a trainable set: the fewer (and smaller) the parameters, the larger the
/// step they need. Full/embeddings 5e-5; weight matrices 5e-4; vectors (LayerNorm, bias, head, random)
/// 5e-3. A set mixing rate groups takes the smallest, which is safe for its largest member.
public func defaultLearningRate(modules: [TrainableModule]) -> Double {
  switch TrainableModule.RateGroup.of(modules) {
  case .whole: return 5e-5
  case .matrix: return 5e-4
  case .vector, .scattered: return 5e-3
  }
}

/// A cell of a grid and its id: the spec's hash (`CellSpec.hash`), computed once when the cell is
/// planned. Rank 0 sends both to the group that trains it; the group reports the id back.
public struct PlannedCell: Codable, Hashable, Sendable {
  public let spec: CellSpec
  public let id: String
  /// The cell whose chosen learning rate this one trains at (`TrainOptions.rateFromSeed`): the same
  /// task, set and layers at that seed. Rank 0 hands this cell out only once the parent has a record.
  public let parent: String?
  /// Filled in by rank 0 when it hands the cell out: the parent's chosen rate (nil when the parent
  /// failed or collapsed: then the cell searches itself).
  public var inheritedRate: Double?

  public init(_ spec: CellSpec) {
    self.spec = spec
    self.id = spec.hash
    if let from = spec.options.rateFromSeed {
      var p = spec
      p.options.seed = from
      p.options.rateFromSeed = nil
      parent = p.hash
    } else {
      parent = nil
    }
  }
}

/// The expansion of a grid's flags into cells, in a stable order: task, then module set, then layer,
/// then seed, then learning rate. The same flags give the same cells in the same order on every rank
/// and every restart, which the journal's resume relies on.
public struct GridPlan: Sendable {
  /// The cells with their ids, computed here once: the dispatcher, the journal and the adapters' file
  /// names use them.
  public let planned: [PlannedCell]
  public var cells: [CellSpec] { planned.map(\.spec) }
  /// Lines worth telling the user, e.g. which module sets got one `all` cell despite `--layers each`.
  public let notes: [String]

  /// A plan assembled from several expansions (a preset's module-wise and layer-wise parts).
  public init(planned: [PlannedCell], notes: [String]) {
    self.planned = planned
    self.notes = notes
  }

  /// - Parameters:
  ///   - modules: module sets, each one cell family; `[.query, .value]` trains both together.
  ///   - learningRates: explicit rates for every cell, or nil for `defaultLearningRate` per module set.
  ///   - randomCount: scalars trained by the `random` control (required when `random` is listed).
  ///   - selectLearningRate: one cell per seed that chooses among `learningRates` on dev by
  ///     successive halving (`LearningRateSelection`), instead of one cell per learning rate.
  ///   - reuseRates: with `selectLearningRate`, only the first seed's cell searches; the other seeds'
  ///     cells train at the rate it chose (`TrainOptions.rateFromSeed`).
  ///   - bounds: the search's hard bounds per trainable set (nil: no extension past the candidates).
  public init(tasks: [String], modules sets: [[TrainableModule]], layers: GridLayers, seeds: [UInt64],
              learningRates: [Double]?, selectLearningRate: Bool = false, reuseRates: Bool = false,
              bounds: [Double]? = nil, base: TrainOptions, model: String,
              numLayers: Int, randomCount: Int? = nil) throws {
    guard !tasks.isEmpty else { throw PETLError("--tasks: the grid needs at least one task") }
    guard !sets.isEmpty, !sets.contains(where: \.isEmpty) else { throw PETLError("--modules: the grid needs at least one module") }
    guard !seeds.isEmpty else { throw PETLError("--seeds: the grid needs at least one seed") }
    if let lrs = learningRates {
      guard !lrs.isEmpty else { throw PETLError("--lrs: the grid needs at least one learning rate") }
      for lr in lrs where !(lr > 0 && lr.isFinite) { throw PETLError("--lrs: learning rate \(lr) is not positive") }
      try Self.noDuplicates(lrs, flag: "--lrs")
    }
    try Self.noDuplicates(tasks, flag: "--tasks")
    try Self.noDuplicates(sets.map(TrainableModule.name), flag: "--modules")
    try Self.noDuplicates(seeds, flag: "--seeds")
    guard numLayers > 0 else { throw PETLError("model \(model): has no encoder layers") }
    if case .list(let list) = layers {
      guard !list.isEmpty else { throw PETLError("--layers: empty layer list") }
      for i in list where i >= numLayers {
        throw PETLError("--layers: layer \(i) does not exist (model \(model) has layers 0..\(numLayers - 1))")
      }
    }
    if sets.contains(where: { $0.contains(.random) }), randomCount == nil {
      throw PETLError("--random-count: required when the grid includes the 'random' module")
    }
    if let k = randomCount, k <= 0 { throw PETLError("--random-count: must be positive, got \(k)") }

    let layerCells: [LayerSelection]
    switch layers {
    case .all: layerCells = [.all]
    case .each: layerCells = (0..<numLayers).map { .indices([$0]) }
    case .list(let list): layerCells = list.map { .indices([$0]) }
    }

    var notes: [String] = []
    var cells: [CellSpec] = []
    for task in tasks {
      for set in sets {
        let layerWise = set.allSatisfy(\.isLayerWise)
        if !layerWise && layers != .all && task == tasks[0] {
          notes.append("\(TrainableModule.name(set)) is not layer-wise: one cell over all layers")
        }
        for selection in layerWise ? layerCells : [.all] {
          for seed in seeds {
            let rates = learningRates ?? [defaultLearningRate(modules: set)]
            var options = base
            options.seed = seed
            let perCell: [TrainOptions]
            if selectLearningRate && rates.count > 1 {
              options.learningRate = 0
              options.learningRateCandidates = rates.sorted()
              options.rungPastChance = true
              if let b = bounds, options.learningRateBounds == nil { options.learningRateBounds = b }
              if reuseRates && seed != seeds[0] { options.rateFromSeed = seeds[0] }
              perCell = [options]
            } else {
              perCell = rates.map { lr in var o = options; o.learningRate = lr; return o }
            }
            for o in perCell {
              cells.append(CellSpec(task: task, modules: set, layers: selection,
                                    randomCount: set.contains(.random) ? randomCount : nil,
                                    model: model, options: o))
            }
          }
        }
      }
    }
    self.planned = cells.map(PlannedCell.init)
    self.notes = notes
  }

  private static func noDuplicates<T: Hashable & CustomStringConvertible>(_ values: [T], flag: String) throws {
    var seen = Set<T>()
    for v in values where !seen.insert(v).inserted { throw PETLError("\(flag): '\(v)' is listed twice") }
  }
}

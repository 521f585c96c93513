/// Estimates what a cell costs, to hand the costliest cells out first (so the grid does not end with
/// one long cell running alone) and to give an ETA.
///
/// A unit is one layer-pass over one example. Every cell runs forward through all L layers; backward
/// stops at the lowest trainable layer and costs about twice a forward pass per layer it crosses:
/// `L + 2 * (L - lowest)` units per example. Sets that reach the embeddings (full, embeddings, bias,
/// random, and any `all`-layer set) have `lowest = 0`; pooler and classifier cells need no backward
/// through the encoder (`lowest = L`). `observe` turns finished cells into seconds per unit.
public struct CostModel: Sendable {
  public let numLayers: Int
  /// Training-set sizes by task (lower-case name); used before `maxTrain` and epochs.
  public var trainExamples: [String: Int]
  private var observedSeconds = 0.0
  private var observedUnits = 0.0

  /// Standard GLUE training-set sizes: the cost of a cell before its data is read.
  public static let glueTrainExamples: [String: Int] = [
    "cola": 8_551, "sst2": 67_349, "sst-2": 67_349, "mrpc": 3_668, "sts-b": 5_749, "stsb": 5_749,
    "qqp": 363_846, "mnli": 392_702, "qnli": 104_743, "rte": 2_490, "wnli": 635,
  ]
  /// Size assumed for a task the table does not know; it only shifts that task's place in the order.
  public static let unknownTaskExamples = 10_000

  public init(numLayers: Int, trainExamples: [String: Int] = CostModel.glueTrainExamples) {
    self.numLayers = numLayers
    self.trainExamples = trainExamples
  }

  /// The lowest encoder layer backward must reach for this cell.
  public func lowestTrainableLayer(_ spec: CellSpec) -> Int {
    if spec.modules.allSatisfy({ $0 == "pooler" || $0 == "classifier" }) { return numLayers }
    switch spec.layers {
    case .all: return 0
    case .indices(let list):
      let reachesEmbeddings = spec.modules.contains { ModuleCatalog.notLayerWise.contains($0) && $0 != "pooler" && $0 != "classifier" }
      return reachesEmbeddings ? 0 : (list.min() ?? 0)
    }
  }

  /// Cost units of one cell.
  public func units(_ spec: CellSpec) -> Double {
    let perExample = Double(numLayers + 2 * (numLayers - lowestTrainableLayer(spec)))
    let examples: Double
    if let steps = spec.options.maxSteps {
      examples = Double(steps * spec.options.batchSize)
    } else {
      var n = trainExamples[spec.task.lowercased()] ?? Self.unknownTaskExamples
      if let cap = spec.options.maxTrain { n = min(n, cap) }
      examples = Double(n * spec.options.epochs)
    }
    return perExample * examples
  }

  /// Learns from a finished cell how many seconds one unit takes.
  public mutating func observe(_ spec: CellSpec, seconds: Double) {
    guard seconds.isFinite, seconds > 0 else { return }
    observedSeconds += seconds
    observedUnits += units(spec)
  }

  /// Seconds per unit learned so far, nil before the first observation.
  public var secondsPerUnit: Double? { observedUnits > 0 ? observedSeconds / observedUnits : nil }

  /// Estimated seconds for `cells` when `workers` groups run them side by side.
  public func estimatedSeconds(_ cells: [CellSpec], workers: Int) -> Double? {
    guard let rate = secondsPerUnit else { return nil }
    return cells.reduce(0) { $0 + units($1) } * rate / Double(max(workers, 1))
  }

  /// Cells ordered costliest first; ties keep the plan's order.
  public func costliestFirst(_ cells: [CellSpec]) -> [CellSpec] {
    cells.enumerated().sorted { a, b in
      let ua = units(a.element), ub = units(b.element)
      return ua != ub ? ua > ub : a.offset < b.offset
    }.map(\.element)
  }
}

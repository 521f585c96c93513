import Foundation
import PETLModel
import PETLTraining

/// Estimates what a cell costs, to hand the costliest cells out first (so the grid does not end with
/// one long cell running alone) and to give an ETA.
///
/// Two terms, in layer-passes over one example: the FORWARD term counts every layer of every epoch,
/// except that with the frozen-prefix cache epochs after the first start at the lowest trainable
/// layer; the BACKWARD term counts the layers backward crosses (down to the lowest trainable one),
/// doubled for `full` (every weight gradient). A backward layer without weight gradients costs
/// about as much as a forward layer, so both terms start at one second-per-unit rate;
/// `observe` fits the two rates to finished cells (least squares), which then drive both the order
/// and the ETA. Pooler and classifier cells need no backward through the encoder.
public struct CostModel: Sendable {
  public let numLayers: Int
  /// Training-set sizes by task (lower-case name); used before `maxTrain` and epochs.
  public var trainExamples: [String: Int]
  /// Sums for the least-squares fit of seconds ≈ f·forward + b·backward.
  private var sFF = 0.0, sFB = 0.0, sBB = 0.0, sFS = 0.0, sBS = 0.0
  private var observed = 0

  /// Standard GLUE training-set sizes: the cost of a cell before its data is read.
  public static let glueTrainExamples: [String: Int] = [
    "cola": 8_551, "sst2": 67_349, "sst-2": 67_349, "mrpc": 3_668, "sts-b": 5_749, "stsb": 5_749,
    "qqp": 363_846, "mnli": 392_702, "qnli": 104_743, "rte": 2_490, "wnli": 635,
  ]
  /// Size assumed for a task the table does not know; it only shifts that task's place in the order.
  public static let unknownTaskExamples = 10_000

  /// The model's layout: a cell's trainable set is resolved against it (`TrainableSet`), so the layers
  /// backward crosses and the cached prefix are the engine's own (`GradientPlan`), not a second guess.
  public let layout: ParameterLayout
  private let facts = FactsMemo()

  public init(layout: ParameterLayout, trainExamples: [String: Int] = CostModel.glueTrainExamples) {
    self.layout = layout
    self.numLayers = layout.dims.layers
    self.trainExamples = trainExamples
  }

  /// What the cost needs of a cell's trainable set: the lowest layer backward reaches and the frozen
  /// prefix a cache holds (`GradientPlan.lowestLayer`, `frozenPrefix`), resolved once per set.
  public func reach(_ spec: CellSpec) -> (lowest: Int, frozenPrefix: Int?) {
    facts.get(FactsMemo.Key(modules: spec.modules, layers: spec.layers, randomCount: spec.randomCount,
                            seed: spec.options.seed)) { key in
      guard let set = try? TrainableSet(modules: key.modules, layers: key.layers, layout: layout,
                                        randomCount: key.randomCount, seed: key.seed) else { return (0, nil) }
      return (set.plan.lowestLayer, set.plan.frozenPrefix)
    }
  }

  /// The two cost terms of a cell, in layer-passes over one example.
  public func terms(_ spec: CellSpec) -> (forward: Double, backward: Double) {
    let L = Double(numLayers), (lowest, frozenPrefix) = reach(spec)
    let o = spec.options
    var perEpoch: Double, epochs: Double
    if let steps = o.maxSteps {
      perEpoch = Double(steps * o.batchSize); epochs = 1
    } else {
      var n = trainExamples[spec.task.lowercased()] ?? Self.unknownTaskExamples
      if let cap = o.maxTrain { n = min(n, cap) }
      perEpoch = Double(n)
      epochs = Double(CellTrainer.totalSteps(o, examples: n) / max(1, (n + o.batchSize - 1) / o.batchSize))
    }
    // With the cache, later epochs start at the frozen prefix (a head-only cell: at the pooled outputs).
    let start = o.prefixCache ? Double(frozenPrefix ?? 0) : 0
    let forward = perEpoch * (L + (epochs - 1) * (L - start))
    let crossed = L - Double(max(lowest, 0))
    let backward = perEpoch * epochs * crossed * (spec.modules.contains(.full) ? 2 : 1)
    // A cell that reuses another seed's rate trains once; a searching one its candidates' share.
    let k = o.rateFromSeed != nil ? 1 : LearningRateSelection.costFactor(candidates: o.learningRateCandidates?.count ?? 1)
    return (forward * k, backward * k)
  }

  /// The two rates (seconds per unit) fitted so far, nil before the first observation. With one
  /// observation, or cells that do not tell the terms apart, both terms share one rate.
  public var rates: (forward: Double, backward: Double)? {
    guard observed > 0 else { return nil }
    let det = sFF * sBB - sFB * sFB
    if observed >= 2 && det > 1e-9 * sFF * sBB {
      let f = (sFS * sBB - sBS * sFB) / det, b = (sBS * sFF - sFS * sFB) / det
      if f > 0 && b > 0 { return (f, b) }
    }
    let shared = (sFS + sBS) / (sFF + 2 * sFB + sBB)  // one rate r for seconds ≈ r·(forward + backward)
    return (shared, shared)
  }

  /// Cost units of one cell: the terms weighted by the fitted rates' ratio (1:1 before any fit).
  public func units(_ spec: CellSpec) -> Double {
    let t = terms(spec)
    guard let r = rates else { return t.forward + t.backward }
    return t.forward + t.backward * r.backward / r.forward
  }

  /// Learns from a finished cell.
  public mutating func observe(_ spec: CellSpec, seconds: Double) {
    guard seconds.isFinite, seconds > 0 else { return }
    let t = terms(spec)
    sFF += t.forward * t.forward; sFB += t.forward * t.backward; sBB += t.backward * t.backward
    sFS += t.forward * seconds; sBS += t.backward * seconds
    observed += 1
  }

  /// Hidden size of the model, for the prior below (0: unknown, the prior uses BERT-base's 768).
  public var hiddenSize = 0
  /// The slow compute rate the prior assumes, FLOP/s: well below any node's fp32 GEMM rate, so the
  /// watchdog's bound before the first finished cell is generous.
  public static let priorFlopsPerSecond = 2e9

  /// Seconds of one cell at `priorFlopsPerSecond`, before any cell has finished: a layer-pass over one
  /// example costs about 24·h²·n FLOPs of GEMM plus 4·n²·h of attention at n = `maxLength` tokens.
  public func priorSeconds(_ spec: CellSpec) -> Double {
    let t = terms(spec)
    let h = Double(hiddenSize > 0 ? hiddenSize : 768), n = Double(spec.options.maxLength)
    return (t.forward + t.backward) * (24 * h * h * n + 4 * n * n * h) / Self.priorFlopsPerSecond
  }

  /// Estimated seconds of one cell, nil before the first observation.
  public func estimatedSeconds(_ spec: CellSpec) -> Double? {
    guard let r = rates else { return nil }
    let t = terms(spec)
    return t.forward * r.forward + t.backward * r.backward
  }

  /// Estimated seconds for `cells` when `workers` groups run them side by side.
  public func estimatedSeconds(_ cells: [CellSpec], workers: Int) -> Double? {
    guard rates != nil else { return nil }
    return cells.reduce(0) { $0 + estimatedSeconds($1)! } / Double(max(workers, 1))
  }

  /// Cells (anything holding a spec) ordered costliest first; ties keep the plan's order.
  public func costliestFirst<Cell>(_ cells: [Cell], spec: (Cell) -> CellSpec) -> [Cell] {
    cells.enumerated().sorted { a, b in
      let ua = units(spec(a.element)), ub = units(spec(b.element))
      return ua != ub ? ua > ub : a.offset < b.offset
    }.map(\.element)
  }
}

/// The memo behind `CostModel.reach`: the dispatcher re-sorts the queue after every cell, and a
/// `random` set draws its scalars when resolved.
private final class FactsMemo: @unchecked Sendable {
  struct Key: Hashable {
    let modules: [TrainableModule]
    let layers: LayerSelection
    let randomCount: Int?
    let seed: UInt64
  }
  private var values: [Key: (lowest: Int, frozenPrefix: Int?)] = [:]
  private let lock = NSLock()

  func get(_ key: Key, _ make: (Key) -> (lowest: Int, frozenPrefix: Int?)) -> (lowest: Int, frozenPrefix: Int?) {
    lock.lock(); defer { lock.unlock() }
    if let v = values[key] { return v }
    let v = make(key)
    values[key] = v
    return v
  }
}

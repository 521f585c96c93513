/// Estimates what a cell costs, to hand the costliest cells out first (so the grid does not end with
/// one long cell running alone) and to give an ETA.
///
/// Two terms, in layer-passes over one example: the FORWARD term counts every layer of every epoch,
/// except that with the frozen-prefix cache epochs after the first start at the lowest trainable
/// layer; the BACKWARD term counts the layers backward crosses (down to the lowest trainable one),
/// doubled for `full` (every weight gradient). Measured on this engine, a backward layer without
/// weight gradients costs about one forward layer, so both terms start at one second-per-unit rate;
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

  /// The two cost terms of a cell, in layer-passes over one example.
  public func terms(_ spec: CellSpec) -> (forward: Double, backward: Double) {
    let L = Double(numLayers), lowest = lowestTrainableLayer(spec)
    let o = spec.options
    var perEpoch: Double, epochs: Double
    if let steps = o.maxSteps {
      perEpoch = Double(steps * o.batchSize); epochs = 1
    } else {
      var n = trainExamples[spec.task.lowercased()] ?? Self.unknownTaskExamples
      if let cap = o.maxTrain { n = min(n, cap) }
      perEpoch = Double(n); epochs = Double(o.epochs)
    }
    // A head-only cell caches the pooled outputs (the pooler must be frozen for that).
    let cached = o.prefixCache && lowest > 0 && (lowest < numLayers || !spec.modules.contains("pooler"))
    let forward = perEpoch * (L + (epochs - 1) * (cached ? L - Double(lowest) : L))
    let crossed = L - Double(lowest)
    let backward = perEpoch * epochs * crossed * (spec.modules.contains("full") ? 2 : 1)
    let k = LearningRateSelection.costFactor(candidates: o.learningRateCandidates?.count ?? 1)
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

  /// Cells ordered costliest first; ties keep the plan's order.
  public func costliestFirst(_ cells: [CellSpec]) -> [CellSpec] {
    cells.enumerated().sorted { a, b in
      let ua = units(a.element), ub = units(b.element)
      return ua != ub ? ua > ub : a.offset < b.offset
    }.map(\.element)
  }
}

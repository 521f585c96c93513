import Foundation
import PETLTraining
import PETLData
import PETLSupport

/// A result over seeds at one learning rate (or one set of learning-rate candidates): the unit every
/// table cell shows. Scores are x100.
public struct SeedSummary: Equatable, Sendable {
  /// The cells' learning rate; 0 for cells that chose among candidates (see `chosen`).
  public let learningRate: Double
  public let n: Int
  public let mean: Double
  /// Sample standard deviation (n - 1); nil when n == 1 (not measured).
  public let std: Double?
  /// The per-seed scores, by seed.
  public let scores: [Double]
  /// The 95% interval (x100): over seeds and dev examples together (`SeedExampleBootstrap`) when the
  /// records hold their predictions, else for one seed its bootstrap interval over dev examples.
  public let interval: [Double]?
  /// True when `interval` combines seeds and examples.
  public let combined: Bool
  /// The learning rate each seed's cell chose, for cells with candidates.
  public let chosen: [Double]

  init(learningRate: Double, scores: [Double], interval: [Double]? = nil, combined: Bool = false, chosen: [Double] = []) {
    self.learningRate = learningRate
    self.scores = scores
    n = scores.count
    let m = scores.reduce(0, +) / Double(scores.count)
    mean = m
    std = n > 1 ? (scores.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(n - 1)).squareRoot() : nil
    self.interval = combined || n == 1 ? interval : nil
    self.combined = combined && interval != nil
    self.chosen = chosen
  }

  /// The same summary with a combined interval.
  func with(combined interval: [Double]) -> SeedSummary {
    SeedSummary(learningRate: learningRate, scores: scores, interval: interval, combined: true, chosen: chosen)
  }
}

/// What a journal record tells beyond its score: its interval, chosen rate and weight statistics.
public struct CellDetail: Sendable {
  public let interval: [Double]?
  public let chosen: Double?
  public let selection: LearningRateSelection?
  public let pretrainedMeanAbs: Double?
  public let moved: Double?
  public let predictions: DevPredictions?
  /// Collapsed runs the cell set aside before this one.
  public let restarts: Int
}

/// A run the study does not count: it collapsed after every restart (`Collapse`).
public struct CollapsedCell: Sendable {
  public let spec: CellSpec
  public let reason: String
  public let restarts: Int
}

/// What one (task, trainable set, layers) group of cells trained: e.g. rte / layernorm / all.
public struct CellGroup: Hashable, Sendable {
  public let task: String
  /// Modules joined by `+`; the random control is `random(K)` so different counts stay apart; LoRA
  /// cells `lora(r=R):modules` (`lora(r=R,alpha=A):...` when alpha is not the rank), apart from the
  /// same modules trained in full.
  public let set: String
  public let layers: LayerSelection

  public init(task: String, set: String, layers: LayerSelection) {
    self.task = task; self.set = set; self.layers = layers
  }

  init(_ spec: CellSpec) {
    task = spec.task
    if let k = spec.randomCount {
      set = TrainableModule.name(spec.modules) + "(\(k))"
    } else if spec.options.method == .lora {
      set = Self.loraName(spec.modules, rank: spec.options.loraRank, alpha: spec.options.loraAlpha)
    } else {
      set = TrainableModule.name(spec.modules)
    }
    layers = spec.layers
  }

  /// The set name of LoRA cells: `lora(r=8):query+value`.
  public static func loraName(_ modules: [TrainableModule], rank: Int, alpha: Double) -> String {
    let a = alpha == Double(rank) ? "" : ",alpha=" + String(format: "%g", alpha)
    return "lora(r=\(rank)\(a)):" + TrainableModule.name(modules)
  }

  /// A LoRA set's rank and modules (nil: not a LoRA set).
  static func loraParts(_ set: String) -> (rank: Int, modules: String)? {
    guard set.hasPrefix("lora(r="), let close = set.firstIndex(of: ")"), let colon = set.firstIndex(of: ":") else { return nil }
    let inside = set[set.index(set.startIndex, offsetBy: 7)..<close]
    guard let r = Int(inside.split(separator: ",").first ?? "") else { return nil }
    return (r, String(set[set.index(after: colon)...]))
  }
}

/// The journals' ok records grouped and summarised: per group, every learning rate's seed summary and
/// the best one (highest mean; ties go to the smaller learning rate).
public struct StudyResults: Sendable {
  public let records: [JournalRecord]
  public let tasks: [String]
  /// Per group, learning rate -> seed -> score x100 (ok records only).
  public let scores: [CellGroup: [Double: [UInt64: Double]]]
  /// Per group, the trainable and total parameter counts the runs reported.
  public let parameters: [CellGroup: (trainable: Int, total: Int)]
  /// Per group, learning rate -> seed -> what the record says beyond its score (ok records only).
  public let details: [CellGroup: [Double: [UInt64: CellDetail]]]
  /// Per task, the metric its cells are ranked by, as its records name it (`JournalRecord.primaryMetric`).
  public let metrics: [String: String]
  /// Cells whose run collapsed after every restart: listed, never scored.
  public let collapsed: [CollapsedCell]
  /// Per classification task whose head-only cell collapsed in more than half its seeds: what the
  /// claims compare against instead of the head, the dev set's majority class predicted for every
  /// example (the most a collapsed head scores). The head alone is a linear probe, so a collapse there
  /// is what its features carry, not a failed optimisation; with most of its seeds collapsed, its
  /// counted seeds are the exception and too few to stand for it. One deterministic score; its
  /// interval is over dev examples, paired with every group's. Beside it, how many head-only seeds
  /// collapsed, of how many ran.
  let floors: [String: (score: SeedSummary, collapsed: Int, runs: Int)]
  /// Intervals over seeds and dev examples at each group's best learning rate.
  let bootstrap: SeedExampleBootstrap

  /// The bootstrap's name for a task's majority-class floor (`floors`).
  static func floorGroup(_ task: String) -> CellGroup { CellGroup(task: task, set: "majority class", layers: .all) }

  /// The task's majority-class floor with its interval over dev examples (nil: most head seeds counted).
  public func floor(_ task: String) -> SeedSummary? {
    guard let f = floors[task]?.score else { return nil }
    return bootstrap.interval(Self.floorGroup(task)).map { f.with(combined: $0) } ?? f
  }

  /// What "above the head alone" means for a task's claims: the head-only cell, or the majority-class
  /// floor where the head collapsed in most seeds (`floors`). `seeds` holds the summaries that count
  /// as seeds beside the compared cells (none for the floor: it is not a trained cell).
  public struct HeadFloor: Sendable {
    public let group: CellGroup
    public let summary: SeedSummary
    public let name: String
    public let seeds: [SeedSummary]
  }

  public func headFloor(_ task: String) -> HeadFloor? {
    if let floor = floor(task), let c = floors[task] {
      let how = c.collapsed == c.runs ? "in every run" : "in \(c.collapsed) of \(c.runs) seeds"
      return HeadFloor(group: Self.floorGroup(task), summary: floor,
                       name: "head only collapsed \(how), so the floor is the dev majority class", seeds: [])
    }
    let group = CellGroup(task: task, set: TrainableModule.classifier.rawValue, layers: .all)
    return best(group).map { HeadFloor(group: group, summary: $0, name: "head only", seeds: [$0]) }
  }

  public init(records: [JournalRecord]) throws {
    self.records = records
    var scores: [CellGroup: [Double: [UInt64: Double]]] = [:]
    var parameters: [CellGroup: (trainable: Int, total: Int)] = [:]
    var details: [CellGroup: [Double: [UInt64: CellDetail]]] = [:]
    var settings: [String: CellSpec] = [:]
    var metrics: [String: String] = [:]
    var collapsed: [CollapsedCell] = []
    for record in records {
      let group = CellGroup(record.spec)
      if let metric = record.primaryMetric {
        // A task's current records share their inputs, task.json included, so this is a journal edited by hand.
        if let first = metrics[group.task], first != metric {
          throw PETLError("task '\(group.task)' has records ranked by \(first) and by \(metric); report them separately")
        }
        metrics[group.task] = metric
      }
      // Seeds and learning rates are the grid's axes (a preset's candidates and search bounds differ
      // by rate group, and later seeds name the seed whose rate they reuse); anything else differing
      // within a task would silently mix two experiments in one cell.
      var setting = record.spec
      setting.modules = []; setting.layers = .all; setting.randomCount = nil
      setting.options.seed = 0; setting.options.learningRate = 0; setting.options.learningRateCandidates = nil
      setting.options.learningRateBounds = nil; setting.options.rateFromSeed = nil
      // The method and the adapters' shape name the set (`CellGroup`); their dropout stays a setting.
      setting.options.method = .module; setting.options.loraRank = TrainOptions().loraRank
      setting.options.loraAlpha = TrainOptions().loraAlpha
      if let first = settings[group.task], first != setting {
        throw PETLError("task '\(group.task)' mixes training settings (\(first.canonicalJSON) vs \(setting.canonicalJSON)); report them separately")
      }
      settings[group.task] = setting
      if let t = record.trainableParameters, let m = record.totalParameters, parameters[group] == nil {
        parameters[group] = (t, m)
      }
      if record.status == .ok, record.result.collapsed {
        collapsed.append(CollapsedCell(spec: record.spec, reason: record.result.collapse?.reason ?? "",
                                       restarts: record.result.restarts?.count ?? 0))
      } else if record.status == .ok, let score = record.score {
        let lr = record.spec.options.learningRate, seed = record.spec.options.seed
        scores[group, default: [:]][lr, default: [:]][seed] = score * 100
        let r = record.result
        details[group, default: [:]][lr, default: [:]][seed] = CellDetail(
          interval: r.devInterval.map { $0.map { $0 * 100 } }, chosen: r.selection?.chosen, selection: r.selection,
          pretrainedMeanAbs: r.pretrainedMeanAbs, moved: r.moved, predictions: r.devPredictions,
          restarts: r.restarts?.count ?? 0)
      }
    }
    self.scores = scores
    self.parameters = parameters
    self.details = details
    self.metrics = metrics
    self.collapsed = collapsed
    tasks = Set(records.map(\.spec.task)).sorted(by: StudyOrder.task)
    // The combined intervals, at each group's best rate (the one every table and claim shows).
    var plain: [CellGroup: SeedSummary] = [:], predictions: [CellGroup: [DevPredictions?]] = [:]
    for group in scores.keys {
      guard let best = Self.best(Self.summaries(group, scores: scores, details: details)) else { continue }
      plain[group] = best
      let d = details[group]?[best.learningRate] ?? [:]
      predictions[group] = (scores[group]?[best.learningRate] ?? [:]).keys.sorted().map { d[$0]?.predictions }
    }
    var floors: [String: (score: SeedSummary, collapsed: Int, runs: Int)] = [:]
    for task in tasks {
      let head = CellGroup(task: task, set: TrainableModule.classifier.rawValue, layers: .all)
      let counted = Set((scores[head] ?? [:]).values.flatMap(\.keys))
      let lost = Set(collapsed.filter { CellGroup($0.spec) == head }.map(\.spec.options.seed)).subtracting(counted)
      guard lost.count > counted.count, let gold = records.lazy
        .filter({ $0.status == .ok && $0.result.collapsed && CellGroup($0.spec) == head })
        .compactMap({ $0.result.devPredictions?.classes?.gold }).first else { continue }
      let classes = max(2, (gold.max() ?? 0) + 1)
      var counts = [Int](repeating: 0, count: classes)
      for y in gold { counts[y] += 1 }
      let majority = counts.indices.max { counts[$0] < counts[$1] } ?? 0
      let predicted = [Int](repeating: majority, count: gold.count)
      let group = Self.floorGroup(task)
      let value = 100 * score(metric: metrics[task] ?? "accuracy", predicted: predicted, gold: gold, classes: classes)
      let floor = SeedSummary(learningRate: 0, scores: [value])
      floors[task] = (floor, lost.count, lost.count + counted.count)
      plain[group] = floor
      predictions[group] = [DevPredictions(predicted: predicted, gold: gold, classes: classes)]
    }
    self.floors = floors
    bootstrap = SeedExampleBootstrap(groups: predictions, summaries: plain, metrics: metrics)
  }

  /// A task as tables head it: its name and its metric, e.g. `cola (mcc)`.
  public func label(task: String) -> String { ReportFormat.task(task, metric: metrics[task]) }

  /// Every learning rate's summary for a group, smallest learning rate first.
  public func summaries(_ group: CellGroup) -> [SeedSummary] {
    Self.summaries(group, scores: scores, details: details)
  }

  static func summaries(_ group: CellGroup, scores: [CellGroup: [Double: [UInt64: Double]]],
                        details: [CellGroup: [Double: [UInt64: CellDetail]]]) -> [SeedSummary] {
    (scores[group] ?? [:]).sorted { $0.key < $1.key }.map { lr, bySeed in
      let seeds = bySeed.keys.sorted()
      let d = details[group]?[lr] ?? [:]
      return SeedSummary(learningRate: lr, scores: seeds.map { bySeed[$0]! }, interval: seeds.count == 1 ? d[seeds[0]]?.interval : nil,
                         chosen: seeds.compactMap { d[$0]?.chosen })
    }
  }

  static func best(_ summaries: [SeedSummary]) -> SeedSummary? {
    summaries.reduce(nil) { best, s in (best.map { s.mean > $0.mean } ?? true) ? s : best }
  }

  /// The summary at the group's best learning rate, nil when the group has no ok cell; its interval
  /// combines seeds and dev examples where the records allow (`SeedExampleBootstrap`).
  public func best(_ group: CellGroup) -> SeedSummary? {
    guard let s = Self.best(summaries(group)) else { return nil }
    if details[group]?[s.learningRate]?.values.allSatisfy({ $0.predictions != nil }) == true, let i = bootstrap.interval(group) {
      return s.with(combined: i)
    }
    return s
  }

  /// Trainable sets run on all layers for a task, in table order.
  public func moduleWiseSets(task: String) -> [String] {
    Set(records.map(\.spec).filter { $0.task == task && $0.layers == .all }.map { CellGroup($0).set })
      .sorted(by: StudyOrder.set)
  }

  /// Trainable sets run on some layers only, and those layer selections (single layers first, by index).
  public func layerWiseAxes(task: String) -> (sets: [String], layers: [LayerSelection]) {
    let specs = records.map(\.spec).filter { $0.task == task && $0.layers != .all }
    let sets = Set(specs.map { CellGroup($0).set }).sorted(by: StudyOrder.set)
    let layers = Set(specs.map(\.layers)).sorted(by: StudyOrder.layers)
    return (sets, layers)
  }
}

/// Display order: GLUE's task order, the paper's module order, then anything else alphabetically.
enum StudyOrder {
  static let taskOrder = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]
  static let setOrder = [TrainableModule.full, .bias, .classifier, .embeddings, .pooler, .query, .key, .value, .attnOut,
                         .intermediate, .output, .lnAttn, .lnOut, .layernorm].map(\.rawValue)

  static func task(_ a: String, _ b: String) -> Bool { ranked(a, b, taskOrder, a.lowercased().replacingOccurrences(of: "-", with: ""), b.lowercased().replacingOccurrences(of: "-", with: "")) }

  static func set(_ a: String, _ b: String) -> Bool {
    // The random control goes last, by count; LoRA sets before it, by rank, then as their modules.
    let (ra, rb) = (a.hasPrefix("random"), b.hasPrefix("random"))
    if ra != rb { return rb }
    if ra { return (randomCount(a) ?? 0, a) < (randomCount(b) ?? 0, b) }
    let (la, lb) = (CellGroup.loraParts(a), CellGroup.loraParts(b))
    if (la == nil) != (lb == nil) { return lb != nil }
    if let la, let lb {
      return la.rank != lb.rank ? la.rank > lb.rank : ranked(a, b, setOrder, la.modules, lb.modules)
    }
    return ranked(a, b, setOrder, a, b)
  }

  static func layers(_ a: LayerSelection, _ b: LayerSelection) -> Bool {
    switch (a, b) {
    case (.all, _): return b != .all
    case (_, .all): return false
    case (.indices(let x), .indices(let y)): return x.count != y.count ? x.count < y.count : x.lexicographicallyPrecedes(y)
    }
  }

  static func randomCount(_ set: String) -> Int? {
    guard let open = set.firstIndex(of: "("), set.hasSuffix(")") else { return nil }
    return Int(set[set.index(after: open)..<set.index(before: set.endIndex)])
  }

  private static func ranked(_ a: String, _ b: String, _ order: [String], _ ka: String, _ kb: String) -> Bool {
    let (ia, ib) = (order.firstIndex(of: ka) ?? order.count, order.firstIndex(of: kb) ?? order.count)
    return ia != ib ? ia < ib : a < b
  }
}

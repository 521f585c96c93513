import Foundation
import PETLKernels
import PETLData
import PETLTraining

/// Intervals that combine the two sources of noise in a cell's score: the seed (head, batch order,
/// dropout) and the draw of the dev set. Each resample draws the seeds with replacement, then the
/// dev examples with replacement, and scores the mean over the drawn seeds of the metric on the
/// drawn examples. The draws are a function of (task, resample) only, so every group of a task sees
/// the same seeds and examples in resample b: the difference of two groups is a paired comparison
/// (seed i of two cells shares its batch order and head; example j is the same sentence).
///
/// A group whose records hold no predictions (journals from before they were recorded) falls back to
/// a normal approximation from its seeds' spread or its one seed's interval, drawn independently.
struct SeedExampleBootstrap: Sendable {
  static let resamples = 1000

  /// Per group: the B resampled scores (x100); absent when the group has neither predictions nor a
  /// spread to approximate from.
  let draws: [CellGroup: [Double]]

  /// - Parameter seeds: per group, per seed (by seed order), the recorded predictions, or nil.
  init(groups: [CellGroup: [DevPredictions?]], summaries: [CellGroup: SeedSummary], metrics: [String: String],
       resamples: Int = SeedExampleBootstrap.resamples) {
    var draws: [CellGroup: [Double]] = [:]
    var plans: [String: Plan] = [:]
    for (group, perSeed) in groups {
      let metric = metrics[group.task] ?? "accuracy"
      let decoded = perSeed.compactMap { $0.flatMap(Decoded.init) }
      if !decoded.isEmpty, decoded.count == perSeed.count, Set(decoded.map(\.count)).count == 1 {
        let n = decoded[0].count
        let key = "\(group.task)|\(n)"
        if plans[key] == nil { plans[key] = Plan(task: group.task, examples: n, resamples: resamples) }
        draws[group] = plans[key]!.scores(decoded, metric: metric)
      } else if let s = summaries[group], let se = Self.standardError(s) {
        var rng = SeededGenerator(seed: CounterRNG.key(Self.fnv1a(group.task + "|" + group.set + "|\(group.layers)"), 0x6E6F_726D))
        draws[group] = (0..<resamples).map { _ in s.mean + se * Self.normal(&rng) }
      }
    }
    self.draws = draws
  }

  /// The 95% percentile interval of `f` over the resamples (nil when a group it needs has no draws).
  func interval(_ groups: [CellGroup], _ f: ([Double]) -> Double) -> [Double]? {
    let columns = groups.map { draws[$0] }
    guard let first = columns.first, first != nil, columns.allSatisfy({ $0 != nil }) else { return nil }
    let cols = columns.map { $0! }
    let values = (0..<cols[0].count).map { b in f(cols.map { $0[b] }) }.filter(\.isFinite).sorted()
    guard values.count >= cols[0].count * 9 / 10 else { return nil }
    func percentile(_ p: Double) -> Double { values[min(values.count - 1, max(0, Int((p * Double(values.count - 1)).rounded())))] }
    return [percentile(0.025), percentile(0.975)]
  }

  /// A group's own interval.
  func interval(_ g: CellGroup) -> [Double]? { interval([g]) { $0[0] } }

  /// The interval of a − b + offset.
  func difference(_ a: CellGroup, _ b: CellGroup, plus offset: Double = 0) -> [Double]? {
    interval([a, b]) { $0[0] - $0[1] + offset }
  }

  /// The standard error of a summary's mean: its seeds' spread, or its one seed's interval.
  static func standardError(_ s: SeedSummary) -> Double? {
    if let std = s.std { return std / Double(s.n).squareRoot() }
    if let i = s.interval, i.count == 2 { return (i[1] - i[0]) / (2 * 1.96) }
    return nil
  }

  static func normal(_ rng: inout SeededGenerator) -> Double {
    let u1 = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-300), u2 = Double(rng.next() >> 11) / Double(1 << 53)
    return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
  }

  static func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h ^= UInt64(b); h = h &* 0x0000_0100_0000_01b3 }
    return h
  }

  /// One seed's predictions, decoded once.
  struct Decoded {
    var classes: [Int] = [], gold: [Int] = [], numClasses = 0
    var scores: [Double] = [], goldScores: [Double] = []
    var count: Int { max(gold.count, goldScores.count) }

    init?(_ p: DevPredictions) {
      if let s = p.scores, let g = p.goldScores, s.count == g.count, !s.isEmpty {
        scores = s.map(Double.init); goldScores = g.map(Double.init); return
      }
      guard let ps = p.predicted, let gs = p.gold else { return nil }
      let many = ps.contains(",") || gs.contains(",")
      func decode(_ s: String) -> [Int] { many ? s.split(separator: ",").map { Int($0) ?? -1 } : s.map { $0.wholeNumberValue ?? -1 } }
      classes = decode(ps); gold = decode(gs)
      guard classes.count == gold.count, !gold.isEmpty, (classes + gold).allSatisfy({ $0 >= 0 }) else { return nil }
      numClasses = (classes + gold).max()! + 1
    }
  }

  /// The draws of one task (at one dev-set size): which seeds and which examples each resample takes.
  struct Plan {
    let seedPicks: [[Double]]  // per resample, uniforms in [0, 1): seed index = Int(u * S)
    let examples: [[Int]]      // per resample, n example indices
    static let maxSeeds = 64

    init(task: String, examples n: Int, resamples: Int) {
      var rng = SeededGenerator(seed: CounterRNG.key(SeedExampleBootstrap.fnv1a(task), 0x626F_6F74))
      var picks: [[Double]] = [], ex: [[Int]] = []
      for _ in 0..<resamples {
        picks.append((0..<Self.maxSeeds).map { _ in Double(rng.next() >> 11) / Double(1 << 53) })
        ex.append((0..<n).map { _ in Int(rng.next() % UInt64(n)) })
      }
      seedPicks = picks; examples = ex
    }

    /// The resampled scores (x100) of a group with these seeds.
    func scores(_ seeds: [Decoded], metric: String) -> [Double] {
      let S = seeds.count
      var out: [Double] = []
      out.reserveCapacity(examples.count)
      var p = [Int](repeating: 0, count: examples.first?.count ?? 0), g = p
      var ps = [Double](repeating: 0, count: p.count), gs = ps
      for (b, idx) in examples.enumerated() {
        var sum = 0.0
        for k in 0..<S {
          let s = seeds[min(S - 1, Int(seedPicks[b][k % Self.maxSeeds] * Double(S)))]
          if s.scores.isEmpty {
            for (i, j) in idx.enumerated() { p[i] = s.classes[j]; g[i] = s.gold[j] }
            sum += score(metric: metric, predicted: p, gold: g, classes: s.numClasses)
          } else {
            for (i, j) in idx.enumerated() { ps[i] = s.scores[j]; gs[i] = s.goldScores[j] }
            sum += score(metric: metric, predicted: ps, gold: gs)
          }
        }
        out.append(100 * sum / Double(S))
      }
      return out
    }
  }
}

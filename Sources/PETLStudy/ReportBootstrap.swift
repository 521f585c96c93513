import Foundation
import PETLKernels
import PETLData
import PETLTraining
import PETLSupport

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
        var rng = SeededGenerator(seed: CounterRNG.key(fnv1a64(group.task + "|" + group.set + "|\(group.layers)"), 0x6E6F_726D))
        draws[group] = (0..<resamples).map { _ in s.mean + se * Double(rng.normal()) }
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

  /// One seed's predictions, decoded once.
  struct Decoded {
    var classes: [Int] = [], gold: [Int] = [], numClasses = 0
    var scores: [Double] = [], goldScores: [Double] = []
    var count: Int { max(gold.count, goldScores.count) }

    init?(_ p: DevPredictions) {
      if let s = p.scores, let g = p.goldScores, s.count == g.count, !s.isEmpty {
        scores = s.map(Double.init); goldScores = g.map(Double.init); return
      }
      guard let c = p.classes else { return nil }
      (classes, gold) = c
      numClasses = (classes + gold).max()! + 1
    }
  }

  /// The draws of one task (at one dev-set size): which seeds and which examples resample b takes.
  /// Regenerated for every group from (task, b), so nothing of size resamples x examples is kept.
  struct Plan {
    let key: UInt64
    let examples: Int
    let resamples: Int

    init(task: String, examples n: Int, resamples: Int) {
      key = CounterRNG.key(fnv1a64(task), 0x626F_6F74); examples = n; self.resamples = resamples
    }

    /// The resampled scores (x100) of a group with these seeds.
    func scores(_ seeds: [Decoded], metric: String) -> [Double] {
      let S = seeds.count, n = examples
      var out: [Double] = []
      out.reserveCapacity(resamples)
      var idx = [Int](repeating: 0, count: n)
      var p = [Int](repeating: 0, count: n), g = p
      var ps = [Double](repeating: 0, count: n), gs = ps
      for b in 0..<resamples {
        // Seeds and examples from separate streams: a group with more seeds draws the same examples.
        var seedRNG = SeededGenerator(seed: CounterRNG.key(key, UInt64(b), 1))
        var exampleRNG = SeededGenerator(seed: CounterRNG.key(key, UInt64(b), 2))
        for i in 0..<n { idx[i] = Int(exampleRNG.next() % UInt64(n)) }
        var sum = 0.0
        for _ in 0..<S {
          let s = seeds[Int(seedRNG.next() % UInt64(S))]
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

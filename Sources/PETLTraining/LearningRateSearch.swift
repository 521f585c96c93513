import Foundation
import PETLData

/// Chooses a cell's learning rate on dev: successive halving over the candidates, then, when the
/// choice lands on an end of the ladder, the next rate beyond that end (at the ladder's own ratio
/// there) challenges it, and so on up to the hard bounds (`TrainOptions.learningRateBounds`).
///
/// Halving: every candidate trains the first rung's steps on its own full-length schedule; the two
/// with the lowest mean loss on the first half of the primary dev split go on to the last rung, where
/// the best dev metric (ties: lower loss, then the smaller rate) wins. A challenger trains straight
/// to the last rung and must beat the winner strictly. While the last rung cannot decide (its scores
/// are chance's), it moves later (`laterRung`). The winner trains to the end from where it
/// stopped, so its trajectory (batches, dropout masks, schedule) is exactly that of a plain cell at
/// its rate.
///
/// Why two rungs: at the first rung most candidates are still at chance accuracy, where the metric
/// cannot rank them, and the loss ranks by how fast a rate moves, not where it ends (a rate that is
/// fastest early can collapse later). The early rung only drops the worst; the choice is made at the
/// last, where the metric ranks. Why the extension: a rate chosen at an end of the searched range is
/// not an optimum; a comparison of modules at such rates compares how far each sits from its own.
struct LearningRateSearch<Run: SearchTrial> {
  /// Fresh trajectories at a rate; `announce` prints the model's load report once.
  let makeRun: (_ lr: Double, _ announce: Bool) throws -> Run
  let task: TaskDescriptor
  let totalSteps: Int
  /// The accuracy chance can give on the rung's examples (`LearningRateSelection.chanceAccuracy`)
  /// when the last rung moves past chance (`TrainOptions.rungPastChance`); nil otherwise.
  var chanceAccuracy: Double? = nil
  let log: (String) -> Void

  private typealias Entry = (run: Run, index: Int, key: (Double, Double))

  func run(_ candidates: [Double], bounds: [Double]?) throws -> (Run, LearningRateSelection) {
    let rungs = SearchRungs.rungs(totalSteps: totalSteps, candidates: candidates.count)
    var tried = candidates.map { LearningRateSelection.Candidate(learningRate: $0, dev: [:], steps: 0) }
    var alive: [(run: Run?, index: Int)] = candidates.indices.map { (nil, $0) }
    var lastKept: [Entry] = []
    for (r, rung) in rungs.enumerated() {
      let last = r == rungs.count - 1
      // The best `rung.keep` so far, best first; (score, tiebreak) compared as a tuple. The last
      // rung keeps them all, ranked, in case it has to move later (below).
      let keep = last ? Int.max : rung.keep
      var kept: [Entry] = []
      for (existing, index) in alive {
        let run = try existing ?? makeRun(candidates[index], index == 0)
        let key = try score(run, at: rung.steps, last: last, into: &tried[index])
        // Strictly better goes first; on a tie the earlier (smaller) rate stays ahead.
        let at = kept.firstIndex { key > $0.key } ?? kept.count
        kept.insert((run, index, key), at: at)
        if kept.count > keep { kept.removeLast() }
      }
      alive = kept.map { ($0.run, $0.index) }
      lastKept = kept
    }
    var final = rungs.last!.steps
    while let (next, why) = laterRung(after: final, leader: tried[lastKept[0].index],
                                      kept: lastKept.map { tried[$0.index] }) {
      final = next
      log("\(why): the last rung moves to step \(final)")
      for i in lastKept.indices {
        lastKept[i].key = try score(lastKept[i].run, at: final, last: true, into: &tried[lastKept[i].index])
      }
      lastKept.sort { $0.key > $1.key || ($0.key == $1.key && $0.index < $1.index) }
    }
    var winner = lastKept[0]
    // Extension: challenge an end-of-ladder winner with the next rate beyond it.
    if let bounds, candidates.count >= 2 {
      var ladder = candidates.sorted()
      while true {
        let lr = winner.run.lr
        let low = lr == ladder.first!, high = lr == ladder.last!
        guard low || high else { break }
        let next = low ? lr * ladder[0] / ladder[1] : lr * ladder[ladder.count - 1] / ladder[ladder.count - 2]
        guard SearchRungs.within(next, bounds) else { break }
        tried.append(.init(learningRate: next, dev: [:], steps: 0))
        let challenger = try makeRun(next, false)
        let key = try score(challenger, at: final, last: true, into: &tried[tried.count - 1])
        if low { ladder.insert(next, at: 0) } else { ladder.append(next) }
        guard key > winner.key else { break }
        winner = (challenger, tried.count - 1, key)
      }
    }
    let run = winner.run
    log("lr \(String(format: "%.0e", run.lr)) chosen of \(tried.map { String(format: "%.0e", $0.learningRate) }.joined(separator: ", ")) on dev at step \(final)")
    return (run, LearningRateSelection(candidates: tried, chosen: run.lr, rungSteps: final, bounds: bounds))
  }

  /// Where the last rung moves when it cannot decide, with why; nil once it decides or can move no
  /// later than half the cell. It cannot decide while its leader predicts (almost) one class, or,
  /// with `chanceAccuracy`, while no kept candidate's accuracy is above chance: such scores rank
  /// noise. It moves to twice its step; with `chanceAccuracy` the last move may stop at half the
  /// cell. The winner trains on from there, so a later rung costs only the losers' extra steps.
  private func laterRung(after final: Int, leader: LearningRateSelection.Candidate,
                         kept: [LearningRateSelection.Candidate]) -> (Int, String)? {
    let why: String
    if SearchRungs.predictsOneClass(leader) {
      why = "leader still predicts one class"
    } else if let limit = chanceAccuracy, case let accuracies = kept.compactMap({ $0.dev["accuracy"] }),
              !accuracies.isEmpty, accuracies.allSatisfy({ $0 <= limit }) {
      why = "no candidate above chance (accuracy " + String(format: "%.3f", limit) + ")"
    } else {
      return nil
    }
    let half = totalSteps / 2
    let next = chanceAccuracy == nil ? final * 2 : min(final * 2, half)
    return next > final && next <= half ? (next, why) : nil
  }

  /// Trains `run` to `steps` and scores it: (-loss, 0) at an early rung, (metric, -loss) at the last;
  /// (-inf, -inf) when it failed. Records where it stopped and what it scored.
  private func score(_ run: Run, at steps: Int, last: Bool,
                     into candidate: inout LearningRateSelection.Candidate) throws -> (Double, Double) {
    try run.advance(to: steps)
    candidate.steps = run.stepsDone
    var key = (-Double.infinity, -Double.infinity)
    if let reason = run.failure {
      candidate.reason = reason
    } else {
      do {
        candidate.dev = try run.evaluateAtRung(task: task)
        let loss = candidate.dev["loss"] ?? .infinity
        key = last ? (candidate.dev[task.primaryMetric] ?? -.infinity, -loss) : (-loss, 0)
      } catch let failure as CellFailure { candidate.reason = failure.reason }
    }
    log("lr \(String(format: "%.0e", run.lr)): step \(run.stepsDone)/\(totalSteps) "
      + (candidate.reason.map { "failed: \($0)" } ?? metricsLine(candidate.dev)))
    return key
  }
}

/// What the search needs of a trajectory: `CellRun` in a cell, a scripted one in the tests.
protocol SearchTrial: AnyObject {
  var lr: Double { get }
  var stepsDone: Int { get }
  /// Why it failed (diverged), nil while it trains.
  var failure: String? { get }
  func advance(to target: Int) throws
  /// Dev metrics, `loss` and (classification) `majority_share` and `accuracy` on the rung's split.
  func evaluateAtRung(task: TaskDescriptor) throws -> [String: Double]
}

/// The search's schedule and the rules it decides by.
enum SearchRungs {
  /// The rungs for `k` candidates over `totalSteps`: at each, how many candidates go on past it.
  /// Three or more: all train the first twelfth of the steps (about Hyperband's smallest budget at a
  /// halving rate of 3), two go on to a fifth, one to the end; two or fewer: one rung at a fifth.
  static func rungs(totalSteps: Int, candidates k: Int) -> [(steps: Int, keep: Int)] {
    let late = max(1, totalSteps / 5), early = min(totalSteps / 12, late - 1)
    return k > 2 && early >= 1 ? [(early, 2), (late, 1)] : [(late, 1)]
  }

  /// True when `lr` lies within [bounds[0], bounds[1]] (relative slack for rates computed by ratios).
  static func within(_ lr: Double, _ bounds: [Double]) -> Bool {
    bounds.count == 2 && lr >= bounds[0] * (1 - 1e-9) && lr <= bounds[1] * (1 + 1e-9)
  }


  /// A candidate whose rung predictions are (almost) all one class (`Collapse.oneClassShare`): its
  /// score there says nothing about where its rate ends.
  static func predictsOneClass(_ c: LearningRateSelection.Candidate) -> Bool {
    guard let share = c.dev[majorityShareKey] else { return false }
    return share >= Collapse.oneClassShare
  }

  /// The rung metric holding the share of the most predicted class (classification only).
  static let majorityShareKey = "majority_share"

}

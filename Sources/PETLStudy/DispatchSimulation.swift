import Foundation
import PETLTraining
import PETLSupport

/// Rank 0's dispatcher replayed on a plan without training: how long a grid takes on many ranks.
///
/// Each cell's seconds come from the cost model's two terms (`CostModel.terms`, layer-passes over one
/// example) at one compute rate, divided over the `dp` ranks of a group, plus one gradient all-reduce
/// per optimizer step (`Network`). Groups ask for work as they finish; the queue goes out costliest
/// first by the cost model, which observes every finished cell and reorders what is left, as
/// `Dispatcher` does (re-sorting only when the fitted rates' ratio moves by more than 1e-9, which can
/// only reorder exact ties). The paper preset has neither parent cells nor the frozen-prefix cache,
/// so the dispatcher's waiting for parents and its cache affinity do not arise; a plan with parents
/// is refused.
public struct DispatchSimulation: Sendable {
  /// One gradient all-reduce of `bytes` over `ranks` ranks: `latency` x ceil(log2 ranks) plus
  /// 2(ranks-1)/ranks x bytes / `bandwidth` (a bandwidth-optimal all-reduce; with two ranks
  /// exactly latency + bytes / bandwidth, what `comm-bench` measures between two nodes).
  public struct Network: Sendable {
    public var latency: Double
    public var bandwidth: Double

    public init(latency: Double, bandwidth: Double) { self.latency = latency; self.bandwidth = bandwidth }

    public func allreduceSeconds(bytes: Double, ranks: Int) -> Double {
      guard ranks > 1 else { return 0 }
      let p = Double(ranks)
      return latency * ceil(log2(p)) + 2 * (p - 1) / p * bytes / bandwidth
    }
  }

  /// Seconds of one cost unit (a layer-pass over one example) on one rank.
  public var secondsPerUnit: Double
  public var network: Network
  /// Ideal DDP buckets: each step's all-reduce runs under that step's backward and costs only what
  /// sticks out past it.
  public var overlap: Bool

  public init(secondsPerUnit: Double, network: Network, overlap: Bool = false) {
    self.secondsPerUnit = secondsPerUnit; self.network = network; self.overlap = overlap
  }

  /// A simulated grid: its makespan against the two lower bounds any schedule obeys.
  public struct Outcome: Sendable {
    public var ranks: Int
    public var dp: Int
    public var cells: Int
    /// When the last cell finishes, seconds.
    public var makespan: Double
    /// Rank-seconds of all cells (a cell's seconds x its group's ranks), all-reduces included.
    public var work: Double
    /// Rank-seconds spent in (exposed) all-reduces.
    public var communication: Double
    /// The longest cell at this `dp`, seconds.
    public var longestCell: Double

    /// Total work over the ranks: no schedule ends before it.
    public var workBound: Double { work / Double(ranks) }
    /// The larger of the two bounds (work / ranks, the longest cell).
    public var bound: Double { max(workBound, longestCell) }
  }

  /// A cell's seconds on a group of `dp` ranks, and of them the exposed all-reduce seconds.
  func seconds(_ spec: CellSpec, cost: CostModel, trainable: Int, dp: Int) -> (total: Double, communication: Double) {
    let t = cost.terms(spec)
    let compute = (t.forward + t.backward) * secondsPerUnit / Double(dp)
    guard dp > 1 else { return (compute, 0) }
    let o = spec.options
    let steps: Double
    if let s = o.maxSteps {
      steps = Double(s)
    } else {
      var n = cost.trainExamples[spec.task.lowercased()] ?? CostModel.unknownTaskExamples
      if let cap = o.maxTrain { n = min(n, cap) }
      steps = Double((n + o.batchSize - 1) / o.batchSize * o.epochs)
    }
    let perStep = network.allreduceSeconds(bytes: 4 * Double(trainable), ranks: dp)
    let backwardPerStep = t.backward * secondsPerUnit / Double(dp) / max(steps, 1)
    let exposed = steps * (overlap ? max(0, perStep - backwardPerStep) : perStep)
    return (compute + exposed, exposed)
  }

  /// Replays the dispatcher for `cells` on `ranks` ranks in groups of `dp`. `cost` starts as the grid
  /// starts it (no observations: the model's prior order).
  public func run(_ cells: [PlannedCell], cost start: CostModel, ranks: Int, dp: Int) throws -> Outcome {
    guard dp >= 1, ranks >= dp, ranks % dp == 0 else { throw PETLError("simulate: --dp \(dp) must divide the ranks \(ranks)") }
    if cells.contains(where: { $0.parent != nil }) {
      throw PETLError("simulate: the plan has cells that wait for a parent's rate; the simulation does not model that")
    }
    var cost = start
    var sizes: [String: Int] = [:]   // trainable scalars by set (the random control draws per seed)
    var seconds: [Double] = [], exposed: [Double] = []
    var terms: [(forward: Double, backward: Double)] = []
    for cell in cells {
      let s = cell.spec
      let key = "\(s.modules)|\(s.layers)|\(s.randomCount ?? -1)|\(s.randomCount == nil ? 0 : s.options.seed)"
      if sizes[key] == nil {
        sizes[key] = try TrainableSet(modules: s.modules, layers: s.layers, layout: cost.layout,
                                      randomCount: s.randomCount, seed: s.options.seed).count
      }
      let t = self.seconds(s, cost: cost, trainable: sizes[key]!, dp: dp)
      seconds.append(t.total); exposed.append(t.communication); terms.append(cost.terms(s))
    }
    // The queue as indices, costliest first by the cost model's units (forward + ratio x backward).
    func sorted(_ queue: [Int], ratio: Double) -> [Int] {
      queue.enumerated().sorted { a, b in
        let ua = terms[a.element].forward + terms[a.element].backward * ratio
        let ub = terms[b.element].forward + terms[b.element].backward * ratio
        return ua != ub ? ua > ub : a.offset < b.offset
      }.map(\.element)
    }
    var ratio = 1.0
    var queue = sorted(Array(cells.indices), ratio: ratio)
    var head = 0   // queue[head...] is what is left
    let groups = ranks / dp
    var freeAt = [Double](repeating: 0, count: groups)
    var current = [Int?](repeating: nil, count: groups)
    var makespan = 0.0
    while true {
      // The group that asks next: the earliest to finish (ties: the lower leader).
      var g = 0
      for i in 1..<groups where freeAt[i] < freeAt[g] { g = i }
      let now = freeAt[g]
      if let done = current[g] {
        cost.observe(cells[done].spec, seconds: seconds[done])
        current[g] = nil
        if let r = cost.rates, abs(r.backward / r.forward - ratio) > 1e-9 * ratio {
          ratio = r.backward / r.forward
          queue = sorted(Array(queue[head...]), ratio: ratio); head = 0
        }
      }
      guard head < queue.count else {
        freeAt[g] = .infinity   // no more work: this group is done
        makespan = max(makespan, now)
        if freeAt.allSatisfy({ $0 == .infinity }) { break }
        continue
      }
      let cell = queue[head]; head += 1
      current[g] = cell
      freeAt[g] = now + seconds[cell]
    }
    return Outcome(ranks: ranks, dp: dp, cells: cells.count, makespan: makespan,
                   work: seconds.reduce(0, +) * Double(dp), communication: exposed.reduce(0, +) * Double(dp),
                   longestCell: seconds.max() ?? 0)
  }
}

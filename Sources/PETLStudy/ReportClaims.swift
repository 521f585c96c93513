import Foundation
import PETLTraining

/// The paper's three claims, each with a verdict a reader can quote and the numbers behind it.
///
/// Every comparison is an interval over seeds and dev examples (`SeedExampleBootstrap`), decided
/// against its criterion: above it (yes), below it (no), or straddling it (undecided). A claim over
/// several cells is *supported* when all say yes, *partly supported* when some do, *not supported*
/// when none does, and *undecided* when the undecided cells could move it from one of those to
/// another; claim 3 can also be *contradicted*. Collapsed runs never enter (`StudyResults.collapsed`),
/// and every verdict names how many seeds stand behind its cells.
enum ReportClaims {
  /// A set is a "winning ticket" when it comes within this many points (x100) of full fine-tuning
  /// and above the head-only cell: it transfers, and not only through the head. Where the head alone
  /// collapsed in most seeds, the floor is the dev set's majority class (`StudyResults.headFloor`).
  static let ticketGap = 3.0

  enum Decision: String { case yes, no, undecided }

  /// Above zero, below zero, or straddling it (no interval: undecided).
  static func decide(_ interval: [Double]?) -> Decision {
    guard let i = interval else { return .undecided }
    return i[0] > 0 ? .yes : i[1] < 0 ? .no : .undecided
  }

  /// The verdict over cells: its category if the undecided cells cannot change it, else undecided
  /// with the categories it lies between.
  static func verdict(_ decisions: [Decision]) -> String {
    let m = decisions.count, yes = decisions.filter { $0 == .yes }.count, open = decisions.filter { $0 == .undecided }.count
    func category(_ k: Int) -> String { k == m ? "supported" : k == 0 ? "not supported" : "partly supported" }
    let low = category(yes), high = category(yes + open)
    return low == high ? low : "undecided (\(low) to \(high))"
  }

  /// "3 seeds per cell", or the range and how many cells have fewer than three.
  static func seeds(_ summaries: [SeedSummary]) -> String {
    let ns = summaries.map(\.n)
    guard let lo = ns.min(), let hi = ns.max() else { return "no cells" }
    var text = lo == hi ? "\(lo) seed\(lo == 1 ? "" : "s") per cell" : "\(lo)-\(hi) seeds per cell"
    let few = ns.filter { $0 < 3 }.count
    if few > 0 { text += "; \(few) of \(ns.count) cells \(few == 1 ? "has" : "have") fewer than 3, too few for a verdict to quote" }
    return text
  }

  static func interval(_ i: [Double]?) -> String {
    i.map { "[\(ReportFormat.gap($0[0])), \(ReportFormat.gap($0[1]))]" } ?? "[no interval]"
  }

  /// One claim's verdict on one task.
  struct Claim: Sendable {
    let task: String
    let number: Int
    let verdict: String
    let line: String
    /// The seeds behind the cells it compares: "3", or "1-3" when some have fewer.
    let seeds: String

    init(task: String, number: Int, verdict: String, line: String, cells: [SeedSummary]) {
      (self.task, self.number, self.verdict, self.line) = (task, number, verdict, line)
      let ns = cells.map(\.n)
      let lo = ns.min() ?? 0, hi = ns.max() ?? 0
      seeds = lo == hi ? "\(lo)" : "\(lo)-\(hi)"
    }
  }

  /// The paper's three claims' lines (the LoRA questions have their own section: `loraClaims`).
  static func claims(_ results: StudyResults) -> [String] { verdicts(results).filter { $0.number <= 3 }.map(\.line) }

  /// Where LoRA should go (`ReportLoRA`), when the journals hold LoRA cells.
  static func loraClaims(_ results: StudyResults) -> [String] { verdicts(results).filter { $0.number > 3 }.map(\.line) }

  static func verdicts(_ results: StudyResults) -> [Claim] {
    var out: [Claim] = []
    let boot = results.bootstrap
    for task in results.tasks {
      let t = "**\(results.label(task: task))**"
      let fullGroup = CellGroup(task: task, set: "full", layers: .all)
      let full = results.best(fullGroup)
      // The head-only cell, or the majority class where the head collapsed in most seeds.
      let floor = results.headFloor(task)
      let headGroup = floor?.group ?? CellGroup(task: task, set: "classifier", layers: .all)
      let head = floor?.summary, headName = floor?.name ?? "head only", headSeeds = floor?.seeds ?? []
      let layers = results.layerWiseAxes(task: task).layers
      /// A group is a ticket: within `ticketGap` of full and above the head, both beyond the interval.
      func ticket(_ g: CellGroup) -> Decision {
        let near = decide(boot.difference(g, fullGroup, plus: ticketGap)), above = decide(boot.difference(g, headGroup))
        if near == .no || above == .no { return .no }
        return near == .yes && above == .yes ? .yes : .undecided
      }
      // 1. Every module, trained in all layers, is a winning ticket.
      if let full, let head {
        let modules = Preset.paperModules.map(\.rawValue).compactMap { m -> (String, SeedSummary, Decision)? in
          let g = CellGroup(task: task, set: m, layers: .all)
          return results.best(g).map { (m, $0, ticket(g)) }
        }
        if !modules.isEmpty {
          let d = modules.map(\.2), behind = modules.map(\.1) + [full] + headSeeds
          let v1 = verdict(d)
          var line = "\(t), claim 1 (every module, trained in all layers, is a winning ticket): **\(v1)**, "
            + "\(d.filter { $0 == .yes }.count) of \(modules.count) modules tickets, \(d.filter { $0 == .undecided }.count) undecided "
            + "(\(seeds(behind))); full \(ReportFormat.summary(full)), \(headName) \(ReportFormat.summary(head)): "
            + modules.map { "\($0.0) \(ReportFormat.summary($0.1)) \($0.2 == .yes ? "ticket" : $0.2 == .no ? "not" : "undecided")" }
              .joined(separator: "; ") + "."
          let layerCells = Preset.paperModules.map(\.rawValue).flatMap { m in
            layers.compactMap { l -> Decision? in
              let g = CellGroup(task: task, set: m, layers: l)
              return results.best(g) == nil ? nil : ticket(g)
            }
          }
          if !layerCells.isEmpty {
            line += " Layer-wise: \(layerCells.filter { $0 == .yes }.count) of \(layerCells.count) (module, layer) cells are tickets, "
              + "\(layerCells.filter { $0 == .undecided }.count) undecided."
          }
          out.append(Claim(task: task, number: 1, verdict: v1, line: line, cells: behind))
        }
      }
      // 2. One layer's LayerNorms give acceptable scores: above the head alone beyond the interval
      //    (beside them, random scalars of the same count, of that layer and of the whole encoder).
      let lnCells = layers.compactMap { l in results.best(CellGroup(task: task, set: "layernorm", layers: l)).map { (l, $0) } }
      if let head, !lnCells.isEmpty {
        let count = results.parameters[CellGroup(task: task, set: "layernorm", layers: lnCells[0].0)]
          .map { $0.trainable - ReportFindings.headCount(results, task) }
        var decisions: [Decision] = [], parts: [String] = [], summaries = headSeeds
        for (l, ln) in lnCells {
          let g = CellGroup(task: task, set: "layernorm", layers: l)
          let d = decide(boot.difference(g, headGroup))
          decisions.append(d); summaries.append(ln)
          var text = "\(ReportFormat.layers(l)) \(ReportFormat.summary(ln)) (\(d == .yes ? "acceptable" : d == .no ? "not" : "undecided"))"
          if let k = count {
            let rg = CellGroup(task: task, set: "random(\(k))", layers: l)
            if let random = results.best(rg) {
              text += ", vs random of that layer \(ReportFormat.summary(random)): \(ReportFormat.gap(ln.mean - random.mean)) "
                + interval(boot.difference(g, rg))
            }
          }
          parts.append(text)
        }
        var line = "\(t), claim 2 (one layer's LayerNorms alone give acceptable scores, i.e. above the \(headName) "
          + "\(ReportFormat.summary(head)) beyond the interval): **\(verdict(decisions))**, "
          + "\(decisions.filter { $0 == .yes }.count) of \(lnCells.count) layers, \(decisions.filter { $0 == .undecided }.count) undecided "
          + "(\(seeds(summaries))): " + parts.joined(separator: "; ") + "."
        if let k = count, let whole = results.best(CellGroup(task: task, set: "random(\(k))", layers: .all)) {
          line += " The same count drawn from the whole encoder: \(ReportFormat.summary(whole))."
        }
        if let full { line += " Full fine-tuning: \(ReportFormat.summary(full))." }
        out.append(Claim(task: task, number: 2, verdict: verdict(decisions), line: line, cells: summaries))
      }
      if let (v, line, cells) = magnitudeClaim(results, task: task, layers: layers) {
        out.append(Claim(task: task, number: 3, verdict: v, line: "\(t), " + line, cells: cells))
      }
    }
    return out + ReportLoRA.verdicts(results)
  }

  /// 3. Transferability tied to weight magnitude: Spearman's ρ between the pretrained mean |w| of the
  /// trained module and its layer-wise score, over (module, layer) cells. Significant at 5% beyond
  /// ±1.96/√(n−1); the verdict holds only if the whole interval of ρ over seeds and examples is on one
  /// side of that bound (or within both: not supported).
  static func magnitudeClaim(_ results: StudyResults, task: String, layers: [LayerSelection]) -> (String, String, [SeedSummary])? {
    var cells: [(group: CellGroup, magnitude: Double, score: SeedSummary, moved: Double?)] = []
    for m in Preset.paperModules.map(\.rawValue) {
      for l in layers {
        let g = CellGroup(task: task, set: m, layers: l)
        guard let best = results.best(g), let d = results.details[g]?[best.learningRate]?.values else { continue }
        let mags = d.compactMap(\.pretrainedMeanAbs), mv = d.compactMap(\.moved)
        guard !mags.isEmpty else { continue }
        cells.append((g, mags.reduce(0, +) / Double(mags.count), best, mv.isEmpty ? nil : mv.reduce(0, +) / Double(mv.count)))
      }
    }
    guard cells.count >= 4 else { return nil }
    let n = cells.count, bound = 1.96 / Double(n - 1).squareRoot()
    let rho = ReportFindings.spearman(cells.map { ($0.magnitude, $0.score.mean) })
    let range = results.bootstrap.interval(cells.map(\.group)) { scores in
      ReportFindings.spearman(zip(cells, scores).map { ($0.magnitude, $1) })
    }
    let verdict: String
    if let r = range {
      verdict = r[0] > bound ? "supported" : r[1] < -bound ? "contradicted"
        : (r[0] > -bound && r[1] < bound) ? "not supported" : "undecided"
    } else {
      verdict = "undecided"
    }
    var line = "claim 3 (a module's transferability is tied to its weight magnitude): **\(verdict)**: "
      + "Spearman ρ = \(String(format: "%.2f", rho))"
      + (range.map { " [\(String(format: "%.2f", $0[0])), \(String(format: "%.2f", $0[1]))] over seeds and dev examples" } ?? " (no interval)")
      + " between the pretrained mean |w| of the trained module and its layer-wise score, over \(n) (module, layer) cells "
      + "(|ρ| > \(String(format: "%.2f", bound)) is significant at 5%; \(seeds(cells.map(\.score))))"
    let moved = cells.compactMap { c in c.moved.map { ($0, c.score.mean) } }
    if moved.count >= 4 {
      line += "; ρ = \(String(format: "%.2f", ReportFindings.spearman(moved))) between how far fine-tuning moved the module (‖Δw‖/‖w‖) and the score, over \(moved.count) cells"
    }
    return (verdict, line + ".", cells.map(\.score))
  }

  /// Whether two verdicts reverse each other: one says the claim holds (supported, partly), the
  /// other that it does not (not supported, contradicted). Undecided reverses nothing.
  static func reverses(_ a: String, _ b: String) -> Bool {
    let holds: Set = ["supported", "partly supported"], fails: Set = ["not supported", "contradicted"]
    return (holds.contains(a) && fails.contains(b)) || (fails.contains(a) && holds.contains(b))
  }

  /// `report A B --compare`: every claim's verdict in each study side by side, and whether it held.
  static func comparison(_ a: StudyResults, _ b: StudyResults, names: (String, String)) -> [String] {
    let va = verdicts(a), vb = verdicts(b)
    var lines = ["| task | claim | \(names.0) | \(names.1) | |", "|---|---|---|---|---|"]
    var reversed = 0, same = 0, total = 0
    let keys = (va + vb).map { "\($0.task)|\($0.number)" }
    var seen = Set<String>()
    for key in keys where seen.insert(key).inserted {
      let x = va.first { "\($0.task)|\($0.number)" == key }, y = vb.first { "\($0.task)|\($0.number)" == key }
      let task = x?.task ?? y!.task, number = x?.number ?? y!.number
      let left = x.map { "\($0.verdict) (\($0.seeds) seeds)" } ?? "–"
      let right = y.map { "\($0.verdict) (\($0.seeds) seeds)" } ?? "–"
      var mark = ""
      if let x, let y {
        total += 1
        if x.verdict == y.verdict { same += 1; mark = "same" }
        else if reverses(x.verdict, y.verdict) { reversed += 1; mark = "**reversed**" }
        else { mark = "moved" }
      }
      lines.append("| \(task) | \(number) | \(left) | \(right) | \(mark) |")
    }
    lines.append("")
    lines.append("\(total) claims in both: \(same) the same verdict, \(reversed) reversed (supported or partly supported on one side, not supported or contradicted on the other), \(total - same - reversed) moved without reversing (to or from undecided, or between supported and partly supported).")
    lines.append("")
    lines.append(pairedDifference(a, b, names: names))
    return lines
  }

  /// The cells both studies scored (same task, set, layers, learning-rate axis and seed): the mean
  /// of their score differences (second minus first) and its standard error over cells, which says
  /// whether a change (another precision, another build) moved the study's numbers or only its noise.
  static func pairedDifference(_ a: StudyResults, _ b: StudyResults, names: (String, String)) -> String {
    var d: [Double] = []
    for (group, byRate) in a.scores {
      guard let other = b.scores[group] else { continue }
      for (lr, bySeed) in byRate {
        guard let otherSeeds = other[lr] else { continue }
        for (seed, x) in bySeed { if let y = otherSeeds[seed] { d.append(y - x) } }
      }
    }
    // Studies of other seeds share no cell: their sets' scores (each the mean over its seeds) pair instead.
    var sets: [Double] = []
    for group in a.scores.keys {
      if let x = a.best(group), let y = b.best(group) { sets.append(y.mean - x.mean) }
    }
    func line(_ d: [Double], _ what: String, _ unit: String) -> String {
      guard d.count > 1 else { return "Paired \(unit)s (\(what)): \(d.count) scored in both, too few for a mean difference." }
      let n = Double(d.count), mean = d.reduce(0, +) / n
      let sd = (d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)).squareRoot()
      let se = sd / n.squareRoot()
      return String(format: "Paired %@s (%@) scored in both: %d. Mean difference %@ − %@: %+.2f points, standard error %.2f over %@s (%@ one standard error of zero); mean |difference| %.2f, largest %.2f; %d of %d %@s moved by more than 2 points.",
                    unit, what, d.count, names.1, names.0, mean, se, unit, abs(mean) <= se ? "within" : "beyond",
                    d.map(abs).reduce(0, +) / n, d.map(abs).max() ?? 0, d.filter { abs($0) > 2 }.count, d.count, unit)
    }
    let cells = line(d, "same task, set, layers, learning-rate axis and seed", "cell")
    return d.isEmpty ? cells + " " + line(sets, "same task, set and layers; each its mean over seeds", "set") : cells
  }
}

import Foundation
import PETLModel
import PETLTraining

/// The claims at the top of the report. Each states its numbers and is made only when the cells it
/// compares exist: a claim about a gap needs the full fine-tuning cell of the same task, a best layer
/// needs at least two layers with results, LayerNorm vs random needs equal trainable counts.
enum ReportFindings {
  /// Sets that train all layers and come within this many points (x100) of full fine-tuning.
  static let closeToFull = 1.0

  static func lines(_ results: StudyResults) -> [String] {
    var out: [String] = []
    for task in results.tasks {
      out += closeToFullLines(results, task)
      out += bestLayerLines(results, task)
      out += layerNormVersusRandomLines(results, task)
    }
    return out
  }

  private static func closeToFullLines(_ results: StudyResults, _ task: String) -> [String] {
    guard let full = results.best(CellGroup(task: task, set: "full", layers: .all)) else { return [] }
    let others = results.moduleWiseSets(task: task).filter { $0 != "full" }
      .compactMap { set in results.best(CellGroup(task: task, set: set, layers: .all)).map { (set, $0) } }
    guard !others.isEmpty else { return [] }
    let head = "**\(results.label(task: task))**: full fine-tuning \(ReportFormat.summary(full))"
    let close = others.filter { $0.1.mean >= full.mean - closeToFull }
    if close.isEmpty {
      let nearest = others.max { $0.1.mean < $1.1.mean }!
      return ["\(head); no set comes within \(ReportFormat.score(closeToFull)) point; the closest is \(nearest.0) \(ReportFormat.summary(nearest.1)), \(ReportFormat.gap(nearest.1.mean - full.mean))."]
    }
    let listed = close.map { "\($0.0) \(ReportFormat.summary($0.1)), \(ReportFormat.gap($0.1.mean - full.mean))" }
    return ["\(head); within \(ReportFormat.score(closeToFull)) point: \(listed.joined(separator: "; ")) (\(close.count) of \(others.count) sets)."]
  }

  private static func bestLayerLines(_ results: StudyResults, _ task: String) -> [String] {
    let axes = results.layerWiseAxes(task: task)
    return axes.sets.compactMap { set in
      let scored = axes.layers.compactMap { l in results.best(CellGroup(task: task, set: set, layers: l)).map { (l, $0) } }
      guard scored.count >= 2 else { return nil }
      // max/min keep the first of equals: the lower layer.
      let best = scored.max { $0.1.mean < $1.1.mean }!
      let worst = scored.min { $0.1.mean < $1.1.mean }!
      return "**\(results.label(task: task))**, \(set): best is \(ReportFormat.layers(best.0)) \(ReportFormat.summary(best.1)), worst \(ReportFormat.layers(worst.0)) \(ReportFormat.summary(worst.1)) (\(scored.count) layers with results)."
    }
  }

  private static func layerNormVersusRandomLines(_ results: StudyResults, _ task: String) -> [String] {
    let layerNorm = CellGroup(task: task, set: "layernorm", layers: .all)
    guard let ln = results.best(layerNorm), let lnCount = results.parameters[layerNorm]?.trainable else { return [] }
    return results.moduleWiseSets(task: task).filter { StudyOrder.randomCount($0) != nil }.compactMap { set in
      let group = CellGroup(task: task, set: set, layers: .all)
      guard let random = results.best(group), let count = results.parameters[group]?.trainable else { return nil }
      // Other counts are controls for the layer-wise LayerNorm cells (see `claims`).
      guard count == lnCount else { return nil }
      return "**\(results.label(task: task))**: at \(ReportFormat.count(count)) trainable parameters each, layernorm \(ReportFormat.summary(ln)) vs \(set) \(ReportFormat.summary(random)): layernorm \(ReportFormat.gap(ln.mean - random.mean))."
    }
  }

  /// Trainable parameters of the head-only cell (the head every set also trains).
  static func headCount(_ results: StudyResults, _ task: String) -> Int {
    results.parameters[CellGroup(task: task, set: "classifier", layers: .all)]?.trainable ?? 0
  }

  /// Spearman's rank correlation (average ranks for ties).
  static func spearman(_ pairs: [(Double, Double)]) -> Double {
    func ranks(_ xs: [Double]) -> [Double] {
      let order = xs.indices.sorted { xs[$0] < xs[$1] }
      var r = [Double](repeating: 0, count: xs.count)
      var i = 0
      while i < order.count {
        var j = i
        while j + 1 < order.count && xs[order[j + 1]] == xs[order[i]] { j += 1 }
        for k in i...j { r[order[k]] = Double(i + j) / 2 + 1 }
        i = j + 1
      }
      return r
    }
    let a = ranks(pairs.map(\.0)), b = ranks(pairs.map(\.1))
    let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for i in a.indices { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb) }
    return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
  }
}

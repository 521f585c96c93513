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

  // MARK: the paper's claims

  /// A set is a "winning ticket" when it comes within this many points (x100) of full fine-tuning
  /// and its lower bound (bootstrap interval for one seed, mean − 1.96·SE over seeds) is above the
  /// head-only cell's score: it transfers, and not only through the head.
  static let ticketGap = 3.0

  /// The paper's three claims, each with a verdict and the numbers behind it.
  static func claims(_ results: StudyResults) -> [String] {
    var out: [String] = []
    for task in results.tasks {
      let t = "**\(results.label(task: task))**"
      let full = results.best(CellGroup(task: task, set: "full", layers: .all))
      let head = results.best(CellGroup(task: task, set: "classifier", layers: .all))
      func ticket(_ s: SeedSummary) -> Bool? {
        guard let full, let head, let lower = s.lower else { return nil }
        return s.mean >= full.mean - ticketGap && lower > head.mean
      }
      // 1. Every module is a winning ticket.
      if let full, let head {
        let modules = Preset.paperModules.map(\.rawValue).compactMap { m in results.best(CellGroup(task: task, set: m, layers: .all)).map { (m, $0) } }
        if !modules.isEmpty {
          let yes = modules.filter { ticket($0.1) == true }
          let verdict = yes.count == modules.count ? "supported" : yes.isEmpty ? "not supported" : "partly supported"
          let listed = modules.map { "\($0.0) \(ReportFormat.summary($0.1)) \(ticket($0.1) == true ? "ticket" : "not")" }
          var line = "\(t), claim 1 (every module, trained in all layers, is a winning ticket): **\(verdict)**, "
            + "\(yes.count) of \(modules.count) modules (full \(ReportFormat.summary(full)), head only \(ReportFormat.summary(head))): "
            + listed.joined(separator: "; ") + "."
          let layerCells = Preset.paperModules.map(\.rawValue).flatMap { m in
            results.layerWiseAxes(task: task).layers.compactMap { l in results.best(CellGroup(task: task, set: m, layers: l)) }
          }
          if !layerCells.isEmpty {
            line += " Layer-wise: \(layerCells.filter { ticket($0) == true }.count) of \(layerCells.count) (module, layer) cells are tickets."
          }
          out.append(line)
        }
      }
      // 2. One layer's LayerNorms give acceptable scores (beyond the head, and beyond random scalars
      //    of the same count, of the same layer and of the whole encoder).
      let layers = results.layerWiseAxes(task: task).layers
      let lnCells = layers.compactMap { l in results.best(CellGroup(task: task, set: "layernorm", layers: l)).map { (l, $0) } }
      if let head, !lnCells.isEmpty {
        let count = results.parameters[CellGroup(task: task, set: "layernorm", layers: lnCells[0].0)].map { $0.trainable - Self.headCount(results, task) }
        let acceptable = lnCells.filter { ($0.1.lower ?? -.infinity) > head.mean }
        let verdict = acceptable.count == lnCells.count ? "supported" : acceptable.isEmpty ? "not supported" : "partly supported"
        var parts: [String] = []
        for (l, ln) in lnCells {
          var text = "\(ReportFormat.layers(l)) \(ReportFormat.summary(ln))"
          if let k = count, let random = results.best(CellGroup(task: task, set: "random(\(k))", layers: l)) {
            text += " vs random of that layer \(ReportFormat.summary(random)) (\(ReportFormat.gap(ln.mean - random.mean)))"
          }
          parts.append(text)
        }
        var line = "\(t), claim 2 (one layer's LayerNorms alone give acceptable scores, i.e. above the head-only "
          + "\(ReportFormat.summary(head)) beyond the interval): **\(verdict)**, \(acceptable.count) of \(lnCells.count) layers: "
          + parts.joined(separator: "; ") + "."
        if let k = count, let whole = results.best(CellGroup(task: task, set: "random(\(k))", layers: .all)) {
          line += " The same count drawn from the whole encoder: \(ReportFormat.summary(whole))."
        }
        if let full { line += " Full fine-tuning: \(ReportFormat.summary(full))." }
        out.append(line)
      }
      // 3. Tied to weight magnitude: rank correlation across the layer-wise (module, layer) cells.
      var magnitude: [(Double, Double)] = [], moved: [(Double, Double)] = []
      for m in Preset.paperModules.map(\.rawValue) {
        for l in layers {
          let group = CellGroup(task: task, set: m, layers: l)
          guard let best = results.best(group), let d = results.details[group]?[best.learningRate]?.values else { continue }
          let mags = d.compactMap(\.pretrainedMeanAbs), mv = d.compactMap(\.moved)
          if !mags.isEmpty { magnitude.append((mags.reduce(0, +) / Double(mags.count), best.mean)) }
          if !mv.isEmpty { moved.append((mv.reduce(0, +) / Double(mv.count), best.mean)) }
        }
      }
      if magnitude.count >= 4 {
        func verdict(_ rho: Double, _ n: Int) -> String {
          let bound = 1.96 / Double(n - 1).squareRoot()
          return rho > bound ? "supported" : rho < -bound ? "contradicted" : "not supported"
        }
        let rho = spearman(magnitude), bound = 1.96 / Double(magnitude.count - 1).squareRoot()
        var line = "\(t), claim 3 (a module's transferability is tied to its weight magnitude): **\(verdict(rho, magnitude.count))**: "
          + "Spearman ρ = \(String(format: "%.2f", rho)) between the pretrained mean |w| of the trained module and its layer-wise score, "
          + "over \(magnitude.count) (module, layer) cells (|ρ| > \(String(format: "%.2f", bound)) is significant at 5%)"
        if moved.count >= 4 {
          line += "; ρ = \(String(format: "%.2f", spearman(moved))) between how far fine-tuning moved the module (‖Δw‖/‖w‖) and the score, over \(moved.count) cells"
        }
        out.append(line + ".")
      }
    }
    return out
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

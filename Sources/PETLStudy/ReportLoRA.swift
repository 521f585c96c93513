import Foundation
import PETLTraining

/// Where LoRA should go (`--preset lora`): the paper's question asked of LoRA adapters, with the
/// claims' machinery (intervals over seeds and dev examples, paired; undecided when they straddle).
///
/// 4. Which modules are LoRA's winning tickets: the ticket rule of claim 1, on LoRA cells.
/// 5. LoRA on a module against training that module in full: within `ReportClaims.ticketGap` points.
/// 6. At matched parameters, attention-only LoRA (query, value) against MLP-only (intermediate, output).
/// 7. At the LayerNorms' count, LoRA on query and value against the LayerNorms (and random scalars).
///
/// Numbered after the paper's three so `report --compare` lines them up the same way.
enum ReportLoRA {
  typealias Decision = ReportClaims.Decision

  static func verdicts(_ results: StudyResults) -> [ReportClaims.Claim] {
    var out: [ReportClaims.Claim] = []
    let boot = results.bootstrap
    for task in results.tasks {
      let sets = results.moduleWiseSets(task: task), layerAxes = results.layerWiseAxes(task: task)
      let loraSets = (sets + layerAxes.sets).compactMap { s in CellGroup.loraParts(s).map { (set: s, $0.rank, $0.modules) } }
      guard !loraSets.isEmpty else { continue }
      let t = "**\(results.label(task: task))**"
      let fullGroup = CellGroup(task: task, set: "full", layers: .all)
      // The same floor as the paper's claims: the head alone, or the majority class where it collapsed.
      let floor = results.headFloor(task)
      let headGroup = floor?.group ?? CellGroup(task: task, set: "classifier", layers: .all)
      let headCount = ReportFindings.headCount(results, task)
      func trained(_ g: CellGroup) -> Int? { results.parameters[g].map { $0.trainable - headCount } }
      func ticket(_ g: CellGroup) -> Decision {
        let near = ReportClaims.decide(boot.difference(g, fullGroup, plus: ReportClaims.ticketGap))
        let above = ReportClaims.decide(boot.difference(g, headGroup))
        if near == .no || above == .no { return .no }
        return near == .yes && above == .yes ? .yes : .undecided
      }
      func word(_ d: Decision, _ yes: String, _ no: String) -> String { d == .yes ? yes : d == .no ? no : "undecided" }
      func count(_ d: [Decision], _ v: Decision) -> Int { d.filter { $0 == v }.count }
      // The grid's rank: the one most single-module LoRA sets use.
      let kinds = Preset.loraModules.map(\.rawValue)
      let single = loraSets.filter { kinds.contains($0.2) }
      let rank = Dictionary(grouping: single, by: \.1).max { a, b in (a.value.count, a.key) < (b.value.count, b.key) }?.key
      let names = Dictionary(loraSets.map { ("\($0.2)|\($0.1)", $0.set) }, uniquingKeysWith: { a, _ in a })
      func lora(_ modules: String, _ r: Int, _ l: LayerSelection = .all) -> CellGroup {
        CellGroup(task: task, set: names["\(modules)|\(r)"] ?? "lora(r=\(r)):" + modules, layers: l)
      }

      if let rank, let full = results.best(fullGroup), let floor {
        // 4. LoRA's winning tickets, module-wise and layer-wise.
        let cells = kinds.compactMap { m -> (String, SeedSummary, Decision)? in
          results.best(lora(m, rank)).map { (m, $0, ticket(lora(m, rank))) }
        }
        if !cells.isEmpty {
          let d = cells.map(\.2), v = ReportClaims.verdict(d), behind = cells.map(\.1) + [full] + floor.seeds
          var line = "\(t), LoRA 1 (every module with rank-\(rank) LoRA adapters in all layers is a winning ticket): **\(v)**, "
            + "\(count(d, .yes)) of \(cells.count) modules tickets, \(count(d, .undecided)) undecided "
            + "(\(ReportClaims.seeds(behind))"
            + (floor.seeds.isEmpty ? "; \(floor.name) \(ReportFormat.summary(floor.summary))" : "") + "): "
            + cells.map { "\($0.0) \(ReportFormat.summary($0.1)) \(word($0.2, "ticket", "not"))" }.joined(separator: "; ") + "."
          var layerDecisions: [Decision] = [], bestLayers: [String] = []
          for m in kinds {
            let here = layerAxes.layers.compactMap { l in results.best(lora(m, rank, l)).map { (l, $0) } }
            layerDecisions += here.map { ticket(lora(m, rank, $0.0)) }
            if let top = here.max(by: { $0.1.mean < $1.1.mean }) {
              bestLayers.append("\(m) \(ReportFormat.layers(top.0)) \(ReportFormat.score(top.1.mean))")
            }
          }
          if !layerDecisions.isEmpty {
            line += " Layer-wise: \(count(layerDecisions, .yes)) of \(layerDecisions.count) (module, layer) cells are tickets, "
              + "\(count(layerDecisions, .undecided)) undecided; the best layer of each module: \(bestLayers.joined(separator: ", "))."
          }
          out.append(.init(task: task, number: 4, verdict: v, line: line, cells: behind))
        }
      }

      if let rank {
        // 5. LoRA on a module against the module trained in full.
        var d: [Decision] = [], parts: [String] = [], summaries: [SeedSummary] = []
        for m in kinds {
          let lg = lora(m, rank), mg = CellGroup(task: task, set: m, layers: .all)
          guard let ls = results.best(lg), let ms = results.best(mg) else { continue }
          let decision = ReportClaims.decide(boot.difference(lg, mg, plus: ReportClaims.ticketGap))
          d.append(decision); summaries += [ls, ms]
          var text = "\(m) LoRA \(ReportFormat.summary(ls)) vs in full \(ReportFormat.summary(ms)): "
            + "\(ReportFormat.gap(ls.mean - ms.mean)) \(ReportClaims.interval(boot.difference(lg, mg)))"
          if let a = trained(lg), let b = trained(mg), b > 0 {
            text += " with \(ReportFormat.count(a)) of its \(ReportFormat.count(b)) scalars (\(ReportFormat.percent(a, of: b)))"
          }
          parts.append(text + " (\(word(decision, "matches", "falls short")))")
        }
        if !d.isEmpty {
          let v = ReportClaims.verdict(d)
          out.append(.init(task: task, number: 5, verdict: v, line: "\(t), LoRA 2 (rank-\(rank) LoRA on a module, all layers, comes within "
            + "\(ReportFormat.score(ReportClaims.ticketGap)) points of training that module in full): **\(v)**, \(count(d, .yes)) of \(d.count) modules, "
            + "\(count(d, .undecided)) undecided (\(ReportClaims.seeds(summaries))): " + parts.joined(separator: "; ") + ".", cells: summaries))
        }
      }

      // 6. Attention-only against MLP-only at matched parameters: the pair of counts closest to equal.
      let attention = loraSets.filter { $0.2 == "query+value" }.map { lora($0.2, $0.1) }
      let mlp = loraSets.filter { $0.2 == "intermediate+output" }.map { lora($0.2, $0.1) }
      let pairs = attention.flatMap { a in mlp.map { (a, $0) } }.compactMap { a, m -> (CellGroup, CellGroup, Int, Int)? in
        guard let x = trained(a), let y = trained(m), results.best(a) != nil, results.best(m) != nil else { return nil }
        return (a, m, x, y)
      }
      if let (a, m, x, y) = pairs.min(by: { abs($0.2 - $0.3) < abs($1.2 - $1.3) }), let sa = results.best(a), let sm = results.best(m) {
        let i = boot.difference(a, m), d = ReportClaims.decide(i)
        let v = d == .yes ? "supported" : d == .no ? "contradicted" : "undecided"
        let matched = x == y ? "\(ReportFormat.count(x)) scalars each" : "\(ReportFormat.count(x)) against \(ReportFormat.count(y)) scalars (closest counts)"
        out.append(.init(task: task, number: 6, verdict: v, line: "\(t), LoRA 3 (at matched parameters, attention-only LoRA on query and value "
          + "beats MLP-only LoRA on intermediate and output): **\(v)** (\(ReportClaims.seeds([sa, sm]))): \(a.set) \(ReportFormat.summary(sa)) vs "
          + "\(m.set) \(ReportFormat.summary(sm)), \(matched): \(ReportFormat.gap(sa.mean - sm.mean)) \(ReportClaims.interval(i)).", cells: [sa, sm]))
      }

      // 7. At the LayerNorms' count: LoRA on query and value against the LayerNorms and random scalars.
      let lnGroup = CellGroup(task: task, set: "layernorm", layers: .all)
      if let ln = results.best(lnGroup), let lnCount = trained(lnGroup),
         let qv = attention.first(where: { trained($0) == lnCount }), let sq = results.best(qv) {
        let i = boot.difference(qv, lnGroup), d = ReportClaims.decide(i)
        let v = d == .yes ? "supported" : d == .no ? "contradicted" : "undecided"
        var line = "\(t), LoRA 4 (at the LayerNorms' count, \(ReportFormat.count(lnCount)) scalars, LoRA on query and value beats training "
          + "the LayerNorms): **\(v)** (\(ReportClaims.seeds([sq, ln]))): \(qv.set) \(ReportFormat.summary(sq)) vs layernorm "
          + "\(ReportFormat.summary(ln)): \(ReportFormat.gap(sq.mean - ln.mean)) \(ReportClaims.interval(i))"
        let random = CellGroup(task: task, set: "random(\(lnCount))", layers: .all)
        if let sr = results.best(random) {
          line += "; vs as many random scalars \(ReportFormat.summary(sr)): \(ReportFormat.gap(sq.mean - sr.mean)) "
            + ReportClaims.interval(boot.difference(qv, random))
        }
        out.append(.init(task: task, number: 7, verdict: v, line: line + ".", cells: [sq, ln]))
      }
    }
    return out
  }
}

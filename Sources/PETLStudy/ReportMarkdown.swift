import Foundation
import PETLModel
import PETLTraining

extension StudyReport {
  /// Models whose scores need a caveat next to them: not plain MLM-pretrained checkpoints.
  static let modelNotes = [
    "all-MiniLM-L6-v2": "all-MiniLM-L6-v2 is a sentence-embedding fine-tune of MiniLM (trained on pairs including SNLI, MultiNLI and QQP), not an MLM checkpoint; its scores are not comparable with BERT's in the paper.",
  ]

  public func markdown() -> String {
    var md = ["# Study report", ""]
    let ok = results.records.filter { $0.status == .ok }.count
    let hours = results.records.compactMap(\.wallSeconds).reduce(0, +) / 3600
    md.append("Journals: \(journals.map(\.lastPathComponent).joined(separator: ", ")). \(results.records.count) cells (\(ok) ok, \(coverage.failed.count) failed), \(String(format: "%.2f", hours)) h of wall time.")
    if coverage.isPartial {
      md.append("Status: **partial**, \(coverage.missingCells) of \(coverage.expectedCells) expected cells missing (see Missing).")
    } else {
      md.append("Status: **complete**, all \(coverage.expectedCells) cells implied by the journals are present.")
    }
    md.append("Scores: dev-set primary metric x100, named beside each task (cola mcc, stsb pearson, mrpc/qqp f1, other GLUE tasks and rt-vader accuracy; a task of your own the metric its task.json names): the mean over seeds with its 95% interval over seeds and dev examples together [low, high] (n seeds; \(SeedExampleBootstrap.resamples) resamples drawing the seeds, then the dev examples, with replacement; journals without recorded predictions show ±sample std instead); for one seed the score and its bootstrap interval over dev examples; at each set's best learning rate (highest mean, or the rate the cells chose on dev, see Learning rates); Δ is the gap to full fine-tuning on the same task. Collapsed runs are never counted (see Collapsed runs).")
    for model in Set(results.records.map(\.spec.model)).sorted() { if let note = Self.modelNotes[model] { md.append(note) } }

    md += ["", "## The paper's claims", ""]
    let claims = ReportClaims.claims(results)
    md += claims.isEmpty ? ["No claim can be judged: the journals lack full fine-tuning, the head-only cell, or layer-wise cells."]
      : ["A set is a *winning ticket* when the 95% interval (over seeds and dev examples, paired: the same seeds and examples on both sides) of its gap to full fine-tuning lies above −\(ReportFormat.score(ReportClaims.ticketGap)) points and that of its gap to the head-only cell above 0; *not* a ticket when either interval lies wholly on the wrong side; *undecided* otherwise. A verdict over several cells is **undecided** when its undecided cells could move it between supported, partly supported and not supported. Each verdict names its seeds per cell.", ""]
        + claims.map { "- " + $0 }

    let lora = ReportClaims.loraClaims(results)
    if !lora.isEmpty {
      md += ["", "## Where LoRA should go", "",
             "The same rules on LoRA cells (`--method lora`; sets named `lora(r=R):modules`, alpha = R unless named): LoRA 1 is claim 1's ticket rule; LoRA 2 asks whether LoRA on a module comes within \(ReportFormat.score(ReportClaims.ticketGap)) points of training that module in full, beyond the interval; LoRA 3 and 4 compare sets at matched parameter counts (supported when the first is better beyond the interval, contradicted when the second is, undecided otherwise).", ""]
        + lora.map { "- " + $0 }
    }

    md += ["", "## Findings", ""]
    let findings = ReportFindings.lines(results)
    md += findings.isEmpty ? ["No finding: the journals hold no comparison the findings need (full fine-tuning, two layers of a module, or layernorm and random at equal count)."] : findings.map { "- " + $0 }

    md += ["", "## Module-wise (all layers)", ""] + moduleWiseTable()
    md += ["", "## Layer-wise", ""] + layerWiseSections()
    md += ["", "## Learning rates", ""] + learningRateSection()
    md += ["", "## Collapsed runs", ""] + collapsedSection()
    md += ["", "## Missing", ""] + missingSection()
    md += ["", "## Failed", ""] + failedSection()
    if !setAside.isEmpty { md += ["", "## Set aside: other inputs", ""] + setAsideSection() }
    // `swift-petl magnitudes --output <journal folder>/magnitudes` (the grid writes it) adds its section.
    if let folder = journals.first?.deletingLastPathComponent().appendingPathComponent("magnitudes"),
       let section = try? String(contentsOf: folder.appendingPathComponent("magnitudes.md"), encoding: .utf8) {
      md += ["", section.trimmingCharacters(in: .whitespacesAndNewlines), "", "![weight magnitudes](../magnitudes/magnitudes.svg)"]
    }
    return md.joined(separator: "\n") + "\n"
  }

  /// Records whose data, weights or engine numerics differ from their task's newest run: counted and
  /// named, not pooled into any table above.
  private func setAsideSection() -> [String] {
    var lines = ["\(setAside.count) record(s) are NOT in the tables above: trained on other inputs than their task's newest run (their numbers answer for other data, weights or engine numerics), or with a spec_hash that is not their spec's:", ""]
    var newest: [String: CellInputs?] = [:]
    for r in results.records { newest[r.spec.task] = .some(r.inputs) }
    var groups: [String: Int] = [:]
    for r in setAside {
      let differs: String
      switch (r.inputs, newest[r.spec.task] ?? nil) {
      case _ where r.hashMismatch: differs = "spec_hash \(r.specHash.prefix(24).debugDescription) is not the hash of its spec (\(r.spec.hash))"
      case (let was?, let now?): differs = was.differences(from: now).joined(separator: ", ")
      case (nil, _): differs = "inputs not recorded (older journal)"
      case (_, nil): differs = "newest run has no recorded inputs"
      }
      groups["\(ReportFormat.task(r.spec.task, metric: r.primaryMetric)): \(differs)", default: 0] += 1
    }
    for (k, n) in groups.sorted(by: { $0.key < $1.key }) { lines.append("- \(k): \(n) record(s)") }
    return lines
  }

  /// Per cell that chose its learning rate: the rate chosen and every candidate's score at the rung.
  private func learningRateSection() -> [String] {
    var lines: [String] = []
    var positions: [LearningRateSelection.Position: Int] = [:], atBound: [String] = [], reused = 0, atChance = 0
    for r in results.records where r.status == .ok {
      guard let sel = r.result.selection else { continue }
      if sel.reusedFromSeed != nil { reused += 1; continue }
      if let p = sel.position {
        positions[p, default: 0] += 1
        if p != .interior {
          atBound.append("\(r.spec.task) \(CellGroup(r.spec).set)@\(ReportFormat.layers(r.spec.layers)): \(ReportFormat.learningRate(sel.chosen)) \(p.rawValue)"
            + (sel.bounds.map { " [\(ReportFormat.learningRate($0[0])), \(ReportFormat.learningRate($0[1]))]" } ?? ""))
        }
      }
      let chance = sel.atChance(devPredictions: r.result.devPredictions)
      if chance { atChance += 1 }
      guard let metric = r.primaryMetric else { continue }
      let tried = sel.candidates.map { c in
        "\(ReportFormat.learningRate(c.learningRate)): " + (c.dev[metric].map { score in
          (c.dev["loss"].map { String(format: "loss %.3f, ", $0) } ?? "") + ReportFormat.score(score * 100) + " at step \(c.steps)"
        } ?? "failed")
      }
      lines.append("- \(r.spec.task) \(CellGroup(r.spec).set)@\(ReportFormat.layers(r.spec.layers)) seed \(r.spec.options.seed): "
        + "**\(ReportFormat.learningRate(sel.chosen))** of {\(tried.joined(separator: "; "))}" + (chance ? " (at chance)" : ""))
    }
    guard !lines.isEmpty else {
      return ["Every cell trained at the rate its spec names; tables show the best rate of each set (highest mean)."]
    }
    let searched = positions.values.reduce(0, +)
    var head = ["Chosen on dev by successive halving: every candidate trained the first twelfth of the cell's steps on its own schedule; the two with the lowest mean loss on the first half of dev went on to a fifth of the steps (later, up to half the cell, while that rung could not decide: its leader predicted one class or, for cells searched with `rungPastChance`, no candidate scored above chance), and the one with the better score there to the end (each candidate's loss and score on the first half of dev where it stopped; the tables report the whole dev set). A rate chosen at an end of the candidates was challenged by the next rate beyond it (at the ladder's ratio there), trained to the same rung, up to the cell's hard bounds.", ""]
    if searched > 0 {
      head.append("\(positions[.interior] ?? 0) of \(searched) searches ended on an interior rate (\(String(format: "%.0f", 100 * Double(positions[.interior] ?? 0) / Double(searched)))%); \(positions[.atBound] ?? 0) at a hard bound, \(positions[.atEdge] ?? 0) at an end of a search without bounds."
        + (reused > 0 ? " \(reused) cells of further seeds trained at the rate their first seed's cell chose (not searched again)." : "")
        + (atChance > 0 ? " \(atChance) of \(searched) searches ended with no candidate distinguishable from chance (marked at chance: no candidate's accuracy on half of dev, where it stopped, above the 95% band of always predicting that half's majority class): the rate they kept was chosen among scores chance could give, not shown to be an optimum." : ""))
      if !atBound.isEmpty { head += [""] + atBound.map { "- not interior: " + $0 } }
      head.append("")
    }
    return head + lines
  }

  /// Cells whose every run collapsed (never scored), and cells that needed restarts to train.
  private func collapsedSection() -> [String] {
    var lines: [String] = []
    for c in results.collapsed {
      lines.append("- \(c.spec.label): collapsed after \(c.restarts) restart(s): \(c.reason) (not counted)")
    }
    var restarted = 0
    for r in results.records where r.status == .ok && !r.result.collapsed {
      guard let restarts = r.result.restarts, !restarts.isEmpty else { continue }
      restarted += 1
      lines.append("- \(r.spec.label): trained on restart \(restarts.count) (seed \(r.result.trainedSeed.map(String.init) ?? "?")); set aside: "
        + restarts.map { "seed \($0.seed): \($0.collapse.reason ?? "")" }.joined(separator: "; "))
    }
    let checked = results.records.filter { $0.status == .ok && $0.result.collapse != nil }.count
    let header = "A run *collapsed* when at least \(Int(Collapse.oneClassShare * 100))% of its dev predictions fall in one class (and at least halfway from the gold majority's share to all), or its best epoch's training loss stayed within \(Int(Collapse.chanceFraction * 100))% of the loss of predicting the label prior (regression: predictions nearly constant). Such a run is trained again from seed + \(CellTrainer.restartSeedStride) x restart, up to the cell's restarts; a cell that collapses every time is listed here and never scored. \(results.collapsed.count) of \(checked) checked cells collapsed; \(restarted) needed a restart."
    return [header, ""] + (lines.isEmpty ? ["None."] : lines)
  }

  private func moduleWiseTable() -> [String] {
    let sets = Set(results.tasks.flatMap { results.moduleWiseSets(task: $0) }).sorted(by: StudyOrder.set)
    guard !sets.isEmpty else { return ["No cell trains all layers."] }
    let tasks = results.tasks.filter { !results.moduleWiseSets(task: $0).isEmpty }
    var rows = ["| Set | Trainable | % of model | " + tasks.map { results.label(task: $0) }.joined(separator: " | ") + " |",
                "|---|---:|---:|" + String(repeating: "---:|", count: tasks.count)]
    for set in sets {
      let counts = tasks.compactMap { results.parameters[CellGroup(task: $0, set: set, layers: .all)] }
      let trainable = Set(counts.map(\.trainable)).sorted()
      let countText = trainable.isEmpty ? "?" : trainable.count == 1 ? ReportFormat.count(trainable[0])
        : "\(ReportFormat.count(trainable.first!))–\(ReportFormat.count(trainable.last!))"
      let share = counts.first.map { ReportFormat.percent($0.trainable, of: $0.total) } ?? "?"
      let cells = tasks.map { task -> String in
        guard let s = results.best(CellGroup(task: task, set: set, layers: .all)) else { return "–" }
        guard set != "full", let full = results.best(CellGroup(task: task, set: "full", layers: .all)) else {
          return ReportFormat.summary(s)
        }
        return "\(ReportFormat.summary(s)) Δ\(ReportFormat.gap(s.mean - full.mean))"
      }
      rows.append("| \(set) | \(countText) | \(share) | " + cells.joined(separator: " | ") + " |")
    }
    return rows
  }

  private func layerWiseSections() -> [String] {
    var out: [String] = []
    for task in results.tasks {
      let axes = results.layerWiseAxes(task: task)
      guard !axes.sets.isEmpty else { continue }
      out += ["### \(results.label(task: task))", "",
              "| Module | " + axes.layers.map(ReportFormat.layers).joined(separator: " | ") + " |",
              "|---|" + String(repeating: "---:|", count: axes.layers.count)]
      for set in axes.sets {
        let cells = axes.layers.map { l in results.best(CellGroup(task: task, set: set, layers: l)).map(ReportFormat.summary) ?? "–" }
        out.append("| \(set) | " + cells.joined(separator: " | ") + " |")
      }
      out += ["", "![\(task) heatmap](\(Self.heatmapName(task)))", ""]
    }
    return out.isEmpty ? ["No cell trains a subset of layers."] : out
  }

  private func missingSection() -> [String] {
    guard coverage.isPartial else { return ["None."] }
    var out = ["\(coverage.missingCells) of \(coverage.expectedCells) cells missing (the grid is inferred from the cells present: sets x layers x learning rates x seeds per task)."]
    for gap in coverage.gaps {
      // A searched cell's spec carries rate 0 (chosen on dev): name its seed alone.
      let which = gap.missing.map { $0.learningRate > 0 ? "lr \(ReportFormat.learningRate($0.learningRate)) seed \($0.seed)" : "seed \($0.seed)" }
      out.append("- \(gap.group.task) \(gap.group.set)@\(gap.group.layers): \(gap.missing.count) of \(gap.expected) missing (\(which.joined(separator: ", ")))")
    }
    return out
  }

  private func failedSection() -> [String] {
    guard !coverage.failed.isEmpty else { return ["None."] }
    return ["\(coverage.failed.count) failed cells:"] + coverage.failed.map { "- \($0.spec.label): \(($0.reason ?? "no reason recorded").replacingOccurrences(of: "\n", with: " "))" }
  }
}

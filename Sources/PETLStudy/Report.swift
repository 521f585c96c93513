import Foundation
import PETLModel
import PETLTraining
import PETLSupport

/// The study report built from one or more journals: `report.md` (findings, module-wise table,
/// layer-wise tables with heatmaps, missing and failed cells), two CSVs and one SVG per task with
/// layer-wise cells. Every table cell is mean ±sample std over seeds at the set's best learning rate.
public struct StudyReport: Sendable {
  public let journals: [URL]
  public let results: StudyResults
  public let coverage: StudyCoverage
  /// Records trained on other inputs than their task's newest ones: listed, never pooled.
  public let setAside: [JournalRecord]

  public init(journals: [URL]) throws {
    guard !journals.isEmpty else { throw PETLError("report: give at least one journal") }
    self.journals = journals
    let loaded = try StudyJournal.load(journals)
    results = try StudyResults(records: loaded.records)
    setAside = loaded.setAside
    coverage = StudyCoverage(results)
  }

  /// Writes every file into `folder` (created if needed) and returns their URLs.
  @discardableResult
  public func write(to folder: URL) throws -> [URL] {
    do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
      throw PETLError("\(folder.path): cannot create the report folder (\(error.localizedDescription))")
    }
    var files: [(String, String)] = [("report.md", markdown()), ("module_wise.csv", moduleWiseCSV()),
                                     ("layer_wise.csv", layerWiseCSV())]
    for task in results.tasks { if let svg = heatmap(task: task) { files.append((Self.heatmapName(task), svg)) } }
    return try files.map { name, content in
      let url = folder.appendingPathComponent(name)
      do { try Data(content.utf8).write(to: url, options: .atomic) } catch {
        throw PETLError("\(url.path): cannot write (\(error.localizedDescription))")
      }
      return url
    }
  }

  static func heatmapName(_ task: String) -> String { "\(task)_layers.svg" }

  /// Every claim's verdict in two studies side by side (`report A B --compare`).
  public static func compare(_ a: URL, _ b: URL) throws -> [String] {
    let ra = try StudyReport(journals: [a]), rb = try StudyReport(journals: [b])
    func name(_ u: URL) -> String { u.deletingLastPathComponent().lastPathComponent + "/" + u.lastPathComponent }
    return ReportClaims.comparison(ra.results, rb.results, names: (name(a), name(b)))
  }

  /// Module type x layer heatmap for a task, nil when the task has no layer-wise cells. Under each
  /// score: its 95% bootstrap interval (one seed) or its std over seeds.
  public func heatmap(task: String) -> String? {
    let axes = results.layerWiseAxes(task: task)
    guard !axes.sets.isEmpty else { return nil }
    let best = axes.sets.map { set in axes.layers.map { results.best(CellGroup(task: task, set: set, layers: $0)) } }
    let notes = best.map { row in row.map { s -> String? in
      guard let s else { return nil }
      if let i = s.interval { return "\(ReportFormat.score(i[0]))–\(ReportFormat.score(i[1]))" + (s.n > 1 ? " n=\(s.n)" : "") }
      if let std = s.std { return "±\(ReportFormat.score(std)) (n=\(s.n))" }
      return nil
    } }
    return SVGHeatmap.render(title: "\(results.label(task: task)) by module and layer (x100; 95% interval or std below)",
                             rows: axes.sets, columns: axes.layers.map(ReportFormat.layers),
                             values: best.map { $0.map { $0?.mean } }, notes: notes)
  }

  public func moduleWiseCSV() -> String {
    var lines = ["task,metric,set,layers,trainable_parameters,total_parameters," + Self.summaryHeader + ",gap_to_full"]
    for task in results.tasks {
      let full = results.best(CellGroup(task: task, set: "full", layers: .all))
      for set in results.moduleWiseSets(task: task) {
        let group = CellGroup(task: task, set: set, layers: .all)
        let p = results.parameters[group]
        let best = results.best(group)
        lines.append(([task, results.metrics[task] ?? "", set, "all",
                       p.map { String($0.trainable) } ?? "", p.map { String($0.total) } ?? ""]
                      + summaryFields(best) + [best.flatMap { b in full.map { String(format: "%.4f", b.mean - $0.mean) } } ?? ""])
                     .map(ReportFormat.csv).joined(separator: ","))
      }
    }
    return lines.joined(separator: "\n") + "\n"
  }

  public func layerWiseCSV() -> String {
    var lines = ["task,metric,set,layers,trainable_parameters," + Self.summaryHeader]
    for task in results.tasks {
      let axes = results.layerWiseAxes(task: task)
      for set in axes.sets {
        for layers in axes.layers {
          let group = CellGroup(task: task, set: set, layers: layers)
          lines.append(([task, results.metrics[task] ?? "", set, "\(layers)",
                         results.parameters[group].map { String($0.trainable) } ?? ""] + summaryFields(results.best(group)))
                       .map(ReportFormat.csv).joined(separator: ","))
        }
      }
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// The summary's columns: the learning rate (for cells that chose theirs, the chosen rate of each
  /// seed joined by `;`), n, mean, std (empty for one seed), the bootstrap interval (one seed) and
  /// the per-seed scores joined by `;`.
  static let summaryHeader = "learning_rate,n,mean,std,ci95_low,ci95_high,seed_scores"

  private func summaryFields(_ s: SeedSummary?) -> [String] {
    guard let s else { return ["", "0", "", "", "", "", ""] }
    let lr = s.chosen.isEmpty ? ReportFormat.learningRate(s.learningRate) : s.chosen.map(ReportFormat.learningRate).joined(separator: ";")
    return [lr, String(s.n), String(format: "%.4f", s.mean), s.std.map { String(format: "%.4f", $0) } ?? "",
            s.interval.map { String(format: "%.4f", $0[0]) } ?? "", s.interval.map { String(format: "%.4f", $0[1]) } ?? "",
            s.scores.map { String(format: "%.4f", $0) }.joined(separator: ";")]
  }
}

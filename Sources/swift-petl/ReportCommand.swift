import ArgumentParser
import Foundation
import PETLStudy
import PETLSupport

/// `swift-petl report JOURNAL... [--output DIR]`: tables, findings and heatmaps from study journals.
struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Summarise study journals into report.md, CSVs and per-task SVG heatmaps.")

  @Argument(help: "Journal files (JSON lines); several are merged, a cell present twice counts once.")
  var journals: [String]

  @Option(help: "Folder for the report (default: the first journal's folder + /report).")
  var output: String?

  @Flag(help: "Two journals (or two studies): print every claim's verdict in each side by side, and which reversed.")
  var compare = false

  func run() throws {
    let urls = journals.map { URL(fileURLWithPath: $0) }
    if compare {
      guard urls.count == 2 else { throw PETLError("report --compare: give exactly two journals, got \(urls.count)") }
      let lines = try StudyReport.compare(urls[0], urls[1])
      print(lines.joined(separator: "\n"))
      return
    }
    guard let first = urls.first else { throw PETLError("report: give at least one journal") }
    let folder = output.map { URL(fileURLWithPath: $0) } ?? first.deletingLastPathComponent().appendingPathComponent("report")
    let report = try StudyReport(journals: urls)
    for file in try report.write(to: folder) { print(file.path) }
    if report.coverage.isPartial {
      print("partial: \(report.coverage.missingCells) of \(report.coverage.expectedCells) cells missing")
    }
  }
}

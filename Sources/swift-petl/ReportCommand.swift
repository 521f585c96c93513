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

  func run() throws {
    let urls = journals.map { URL(fileURLWithPath: $0) }
    guard let first = urls.first else { throw PETLError("report: give at least one journal") }
    let folder = output.map { URL(fileURLWithPath: $0) } ?? first.deletingLastPathComponent().appendingPathComponent("report")
    let report = try StudyReport(journals: urls)
    for file in try report.write(to: folder) { print(file.path) }
    if report.coverage.isPartial {
      print("partial: \(report.coverage.missingCells) of \(report.coverage.expectedCells) cells missing")
    }
  }
}

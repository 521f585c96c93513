import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import PETLTraining
@testable import PETLStudy
import PETLSupport

/// The fixture journals are written by Tests/Fixtures/report/make_journals.py; its docstring says
/// which cells are missing, failed and repeated.
private let fixtures = TestSupport.fixtures.appendingPathComponent("report")
private let journalA = fixtures.appendingPathComponent("journal-a.jsonl")
private let journalB = fixtures.appendingPathComponent("journal-b.jsonl")

final class ReportTests: XCTestCase {
  private func best(_ r: StudyResults, _ task: String, _ set: String, _ layers: LayerSelection) -> SeedSummary? {
    r.best(CellGroup(task: task, set: set, layers: layers))
  }

  private func assertSummary(_ s: SeedSummary?, lr: Double, n: Int, mean: Double, std: Double?,
                             file: StaticString = #filePath, line: UInt = #line) {
    guard let s else { return XCTFail("no summary", file: file, line: line) }
    XCTAssertEqual(s.learningRate, lr, file: file, line: line)
    XCTAssertEqual(s.n, n, file: file, line: line)
    XCTAssertEqual(s.mean, mean, accuracy: 1e-9, file: file, line: line)
    if let std { XCTAssertEqual(s.std ?? .nan, std, accuracy: 1e-9, file: file, line: line) } else { XCTAssertNil(s.std, file: file, line: line) }
  }

  func testBestLearningRateMeansAndSampleStd() throws {
    let r = try StudyReport(journals: [journalA]).results
    XCTAssertEqual(r.tasks, ["cola", "rte"])
    // full: lr 1e-4 (70, 72, 71) beats lr 1e-3 (60, 65, 62).
    assertSummary(best(r, "rte", "full", .all), lr: 1e-4, n: 3, mean: 71, std: 1)
    XCTAssertEqual(r.summaries(CellGroup(task: "rte", set: "full", layers: .all)).map(\.learningRate), [1e-4, 1e-3])
    assertSummary(r.summaries(CellGroup(task: "rte", set: "full", layers: .all))[1], lr: 1e-3, n: 3,
                  mean: 187.0 / 3, std: (19.0 / 3).squareRoot())
    // layernorm: lr 1e-3 (70, 70.5, 71) beats lr 1e-2 (68, 69, 60).
    assertSummary(best(r, "rte", "layernorm", .all), lr: 1e-3, n: 3, mean: 70.5, std: 0.5)
    assertSummary(best(r, "rte", "random(9984)", .all), lr: 1e-3, n: 2, mean: 56, std: 2.0.squareRoot())
    assertSummary(best(r, "rte", "query", .indices([1])), lr: 1e-3, n: 3, mean: 65, std: 1)
    // One ok seed: no standard deviation (never measured); these fixture records carry no interval.
    assertSummary(best(r, "rte", "value", .indices([0])), lr: 1e-3, n: 1, mean: 61, std: nil)
    // cola ranks by mcc, not by the accuracy also present in dev.
    assertSummary(best(r, "cola", "bias", .all), lr: 1e-3, n: 3, mean: 32, std: 2)
    XCTAssertEqual(r.parameters[CellGroup(task: "rte", set: "layernorm", layers: .all)]?.trainable, 10_754)
  }

  func testMarkdownTablesShowCellsAndGapsToFull() throws {
    let md = try StudyReport(journals: [journalA]).markdown()
    XCTAssertTrue(md.contains("| Set | Trainable | % of model | cola (mcc) | rte (accuracy) |"), md)
    XCTAssertTrue(md.contains("| full | 22,713,986 | 100% | 42.0 ±2.0 (n=3) | 71.0 ±1.0 (n=3) |"), md)
    XCTAssertTrue(md.contains("| layernorm | 10,754 | 0.0473% | – | 70.5 ±0.5 (n=3) Δ-0.5 |"), md)
    XCTAssertTrue(md.contains("| bias | 42,242 | 0.186% | 32.0 ±2.0 (n=3) Δ-10.0 | – |"), md)
    XCTAssertTrue(md.contains("| random(9984) | 10,754 | 0.0473% | – | 56.0 ±1.4 (n=2) Δ-15.0 |"), md)
    XCTAssertTrue(md.contains("| Module | layer 0 | layer 1 |"), md)
    XCTAssertTrue(md.contains("| value | 61.0 (n=1) | 67.0 ±1.0 (n=3) |"), md)
    XCTAssertFalse(md.contains("±0.0 (n=1)"), "no standard deviation of one seed")
    // Rows in the paper's order: full first, the random control last.
    let order = ["| full |", "| bias |", "| query |", "| layernorm |", "| random(9984) |"].map { md.range(of: $0)!.lowerBound }
    XCTAssertEqual(order, order.sorted())
  }

  func testFindingsStateOnlySupportedClaimsWithNumbers() throws {
    let md = try StudyReport(journals: [journalA]).markdown()
    let findings = md.components(separatedBy: "## Findings")[1].components(separatedBy: "## Module-wise")[0]
    XCTAssertTrue(findings.contains("**rte (accuracy)**: full fine-tuning 71.0 ±1.0 (n=3); within 1.0 point: layernorm 70.5 ±0.5 (n=3), -0.5 (1 of 3 sets)."), findings)
    XCTAssertTrue(findings.contains("**cola (mcc)**: full fine-tuning 42.0 ±2.0 (n=3); no set comes within 1.0 point; the closest is bias 32.0 ±2.0 (n=3), -10.0."), findings)
    XCTAssertTrue(findings.contains("**rte (accuracy)**, query: best is layer 1 65.0 ±1.0 (n=3), worst layer 0 60.0 ±2.0 (n=3)"), findings)
    XCTAssertTrue(findings.contains("at 10,754 trainable parameters each, layernorm 70.5 ±0.5 (n=3) vs random(9984) 56.0 ±1.4 (n=2): layernorm +14.5."), findings)
    XCTAssertEqual(findings.components(separatedBy: "\n- ").count - 1, 5, findings)
  }

  func testPartialJournalListsMissingAndFailedCells() throws {
    let report = try StudyReport(journals: [journalA])
    XCTAssertTrue(report.coverage.isPartial)
    XCTAssertEqual(report.coverage.expectedCells, 36)
    XCTAssertEqual(report.coverage.missingCells, 2)
    XCTAssertEqual(report.coverage.gaps.map { "\($0.group.set)@\($0.group.layers)" }, ["value@0", "random(9984)@all"])
    XCTAssertEqual(report.coverage.failed.map(\.reason), ["loss became NaN at step 12"])
    let md = report.markdown()
    XCTAssertTrue(md.contains("Journals: journal-a.jsonl. 34 cells (33 ok, 1 failed), 0.12 h of wall time."), md)
    XCTAssertTrue(md.contains("Status: **partial**, 2 of 36 expected cells missing"), md)
    XCTAssertTrue(md.contains("- rte random(9984)@all: 1 of 3 missing (lr 0.001 seed 3)"), md)
    XCTAssertTrue(md.contains("- rte value@0 seed2 lr1e-03: loss became NaN at step 12"), md)
  }

  func testMergingJournalsCompletesTheGridAndLaterOkWins() throws {
    let report = try StudyReport(journals: [journalA, journalB])
    XCTAssertFalse(report.coverage.isPartial)
    XCTAssertTrue(report.coverage.failed.isEmpty, "the retried cell succeeded; the repeated ok cell stays ok")
    // 34 + 4 lines, 2 of them hashes already seen (value@0 seed 2, full seed 1); random and value seed 3 are new.
    XCTAssertEqual(report.results.records.count, 36)
    let r = report.results
    assertSummary(best(r, "rte", "value", .indices([0])), lr: 1e-3, n: 3, mean: 62, std: 1)
    assertSummary(best(r, "rte", "random(9984)", .all), lr: 1e-3, n: 3, mean: 56, std: 1)
    assertSummary(best(r, "rte", "full", .all), lr: 1e-4, n: 3, mean: 71, std: 1)
    XCTAssertTrue(report.markdown().contains("Status: **complete**, all 36 cells"))
  }

  func testLaterOkReplacesEarlierOkOfTheSameHash() throws {
    let folder = try temporaryFolder()
    let lines = try String(contentsOf: journalA, encoding: .utf8).split(separator: "\n")
    let first = String(lines[0])  // rte full lr 1e-4 seed 1, accuracy 0.7
    let again = first.replacingOccurrences(of: #""dev": {"accuracy": 0.7}"#, with: #""dev": {"accuracy": 0.73}"#)
    XCTAssertNotEqual(first, again)
    let url = folder.appendingPathComponent("j.jsonl")
    try (lines.map(String.init) + [again]).joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    assertSummary(best(try StudyReport(journals: [url]).results, "rte", "full", .all), lr: 1e-4, n: 3, mean: 72, std: 1)
  }

  func testCorruptedLineNamesFileAndLine() throws {
    let folder = try temporaryFolder()
    var lines = try String(contentsOf: journalA, encoding: .utf8).split(separator: "\n").map(String.init)
    lines[2] = String(lines[2].prefix(40))
    let url = folder.appendingPathComponent("torn.jsonl")
    try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try StudyReport(journals: [url])) { error in
      XCTAssertTrue("\(error)".hasPrefix("\(url.path):3: not a journal record ("), "\(error)")
      XCTAssertFalse("\(error)".contains("\n"))
    }
    lines[2] = lines[3].replacingOccurrences(of: #""accuracy": 0.6"#, with: #""f1": 0.6"#)
    try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try StudyReport(journals: [url])) {
      XCTAssertEqual("\($0)", "\(url.path):3: ok record for rte full@all seed1 lr1e-03 has no finite dev 'accuracy'")
    }
  }

  func testHeatmapIsWellFormedWithOneRectPerCellPlusLegend() throws {
    let report = try StudyReport(journals: [journalA])
    XCTAssertNil(report.heatmap(task: "cola"), "cola has no layer-wise cells")
    let svg = try XCTUnwrap(report.heatmap(task: "rte"))
    let parsed = try SVGCensus(svg)
    // 2 module types x 2 layers, plus the legend's steps.
    XCTAssertEqual(parsed.rects.count, 2 * 2 + SVGHeatmap.legendSteps)
    XCTAssertTrue(parsed.texts.contains("min 60.0") && parsed.texts.contains("max 67.0"), "\(parsed.texts)")
    for score in ["60.0", "65.0", "61.0", "67.0"] { XCTAssertTrue(parsed.texts.contains(score), score) }
    // Under each score its spread: these journal-a cells have several seeds, so their std and n.
    XCTAssertTrue(parsed.texts.contains { $0.hasPrefix("±") && $0.hasSuffix("(n=3)") }, "\(parsed.texts)")
    // The highest score gets the darkest fill and white text, the lowest the lightest fill and dark text.
    let cells = parsed.rects.prefix(4).map { $0["fill"]! }
    XCTAssertEqual(cells, ["#f7fbff", "#2c7aba", "#dbe9f6", "#08306b"])
    XCTAssertEqual(parsed.textFill["67.0"], "#ffffff")
    XCTAssertEqual(parsed.textFill["60.0"], "#111111")
  }

  func testHeatmapEscapesLabelsAndGreysMissingCells() throws {
    let svg = SVGHeatmap.render(title: "a<b & \"c\"", rows: ["q&k", "v"], columns: ["layer 0", "layer 1"],
                                values: [[50, nil], [70, 70]], notes: [[nil, nil], ["66.1–73.9", nil]])
    let parsed = try SVGCensus(svg)
    XCTAssertTrue(parsed.texts.contains("66.1–73.9"), "a cell's note under its value")
    XCTAssertEqual(parsed.rects.count, 4 + SVGHeatmap.legendSteps)
    XCTAssertTrue(parsed.texts.contains("a<b & \"c\""))
    XCTAssertTrue(parsed.texts.contains("q&k"))
    XCTAssertEqual(parsed.rects[1]["fill"], "#e0e0e0")
    XCTAssertTrue(parsed.texts.contains("n/a"))
  }

  func testWriteProducesAllFiles() throws {
    let folder = try temporaryFolder().appendingPathComponent("report")
    let files = try StudyReport(journals: [journalA, journalB]).write(to: folder)
    XCTAssertEqual(files.map(\.lastPathComponent), ["report.md", "module_wise.csv", "layer_wise.csv", "rte_layers.svg"])
    let csv = try String(contentsOf: folder.appendingPathComponent("module_wise.csv"), encoding: .utf8)
    XCTAssertTrue(csv.contains("rte,accuracy,layernorm,all,10754,22713986,0.001,3,70.5000,0.5000,,,70.0000;70.5000;71.0000,-0.5000\n"), csv)
    let layers = try String(contentsOf: folder.appendingPathComponent("layer_wise.csv"), encoding: .utf8)
    XCTAssertTrue(layers.contains("rte,accuracy,value,0,148610,0.001,3,62.0000,1.0000,,,"), layers)
  }

  private func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("petl-report-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
  }
}

/// Parses SVG with XMLParser (failing on malformed XML) and collects rect attributes and text contents.
private final class SVGCensus: NSObject, XMLParserDelegate {
  var rects: [[String: String]] = []
  var texts: [String] = []
  var textFill: [String: String] = [:]
  private var current: String?
  private var currentFill = ""

  init(_ svg: String) throws {
    super.init()
    let parser = XMLParser(data: Data(svg.utf8))
    parser.delegate = self
    guard parser.parse() else { throw PETLError("SVG does not parse: \(parser.parserError.map { "\($0)" } ?? "?")") }
  }

  func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
              attributes: [String: String] = [:]) {
    if name == "rect" { rects.append(attributes) }
    if name == "text" { current = ""; currentFill = attributes["fill"] ?? "" }
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) { current? += string }

  func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
    if name == "text", let t = current { texts.append(t); textFill[t] = currentFill; current = nil }
  }
}

import Foundation
import XCTest
@testable import PETLData

/// `grid --tasks PATH` under a real `mpirun`: cells are journaled under the task's name with the
/// metric its task.json names, a rerun trains nothing, the same rows in another folder resume, an
/// edited row reruns, and the report ranks by the recorded metric.
final class UserTaskGridTests: XCTestCase {
  /// RTE's first rows as JSON Lines, ranked by F1 (class 1, not_entailment, positive).
  func writeTask(to dir: URL) throws {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (split, count) in [("train", 48), ("dev", 32)] {
      let (task, rows) = try UserTaskCLITests.rte(split)
      var text = ""
      for (i, e) in rows.prefix(count).enumerated() {
        let object: [String: Any] = ["id": i, "text": e.textA, "text_pair": e.textB!, "label": task.labelNames[Int(e.label)]]
        text += String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self) + "\n"
      }
      try Data(text.utf8).write(to: dir.appendingPathComponent("\(split).jsonl"))
    }
    try Data("{\"name\": \"rte-mine\", \"metric\": \"f1\", \"labels\": [\"entailment\", \"not_entailment\"]}".utf8)
      .write(to: dir.appendingPathComponent("task.json"))
  }

  func journalLines(_ results: URL) throws -> [[String: Any]] {
    let text = try String(contentsOf: results.appendingPathComponent("journal.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
  }

  func testGridJournalsUserTaskCellsByNameAndResumesThem() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-usertask-grid")
    let first = out.appendingPathComponent("first/folder"), copy = out.appendingPathComponent("elsewhere/copy")
    try writeTask(to: first)
    let results = out.appendingPathComponent("results")
    func grid(_ task: URL) throws -> String {
      var env = GridTests.env
      env["XDG_CACHE_HOME"] = out.appendingPathComponent("cache").path
      let argv = ["mpirun", "-n", "2", TestSupport.binary, "grid", "--model", TestSupport.modelDir.path,
                  "--tasks", task.path, "--results", results.path, "--modules", "classifier,ln_out"] + GridTests.tiny
      let run = try TestSupport.launch(argv, extra: env, timeout: 300)
      XCTAssertEqual(run.status, 0, run.output)
      return run.output
    }
    let trained = try grid(first)
    XCTAssertTrue(trained.contains("task rte-mine: \(first.path)/{train.jsonl, dev.jsonl, task.json}"), trained)
    XCTAssertTrue(trained.contains("grid: 2 ok, 0 failed, 0 already done"), trained)
    let lines = try journalLines(results)
    XCTAssertEqual(lines.count, 2)
    for line in lines {
      XCTAssertEqual((line["spec"] as! [String: Any])["task"] as? String, "rte-mine")
      XCTAssertEqual(line["primary_metric"] as? String, "f1")
      XCTAssertEqual((line["dev"] as! [String: Double]).keys.sorted(), ["accuracy", "f1"])
    }

    XCTAssertTrue(try grid(first).contains("grid: 0 ok, 0 failed, 2 already done"), "a rerun trains nothing")
    try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: first, to: copy)
    let moved = try grid(copy)
    XCTAssertTrue(moved.contains("grid: 0 ok, 0 failed, 2 already done"), "the same rows in another folder resume: \(moved)")

    // One dev row edited: other inputs, so both cells train again and the old records are set aside.
    let dev = copy.appendingPathComponent("dev.jsonl")
    let text = try String(contentsOf: dev, encoding: .utf8)
    let firstLine = text.prefix { $0 != "\n" }
    try (firstLine.replacingOccurrences(of: "\"text\":\"", with: "\"text\":\"Edited. ") + text.dropFirst(firstLine.count))
      .write(to: dev, atomically: true, encoding: .utf8)
    let edited = try grid(copy)
    XCTAssertTrue(edited.contains("grid: 2 ok, 0 failed, 0 already done"), edited)
    XCTAssertTrue(edited.contains("rte-mine: data"), edited)
    XCTAssertEqual(try journalLines(results).count, 4)

    let report = try String(contentsOf: results.appendingPathComponent("report/report.md"), encoding: .utf8)
    XCTAssertTrue(report.contains("| rte-mine (f1) |"), report)
    XCTAssertTrue(report.contains("- rte-mine (f1): data: 2 record(s)"), report)
    let csv = try String(contentsOf: results.appendingPathComponent("report/module_wise.csv"), encoding: .utf8)
    XCTAssertTrue(csv.contains("\nrte-mine,f1,classifier,all,"), csv)
  }
}

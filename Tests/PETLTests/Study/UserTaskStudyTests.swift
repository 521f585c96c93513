import Foundation
import XCTest
@testable import PETLData
@testable import PETLTraining
@testable import PETLStudy

/// A user task in the study: the journal's identity of its inputs, and `report` without its folder.
final class UserTaskStudyTests: XCTestCase {
  /// The journal's identity of a user task: its files' names and contents, not its folder.
  func testTheFingerprintFollowsTheRowsNotTheFolder() throws {
    let files = ["train.jsonl": UserTaskTests.pairs, "dev.jsonl": UserTaskTests.pairs, "task.json": "{\"name\": \"same\"}"]
    let a = try folder(files, name: "a"), b = try folder(files, name: "b")
    let model = try temporaryFolder("petl-model")
    func data(_ dir: URL) throws -> String {
      var catalog = TaskCatalog()
      let name = try catalog.resolve(dir.path, flag: "--tasks").name
      return try CellInputs.current(tasks: [name], catalog: catalog, modelDirectory: model, dataDirectory: model,
                                    fingerprints: FileFingerprints(cacheURL: nil))[name]!.data
    }
    XCTAssertEqual(try data(a), try data(b))
    try Data(UserTaskTests.pairs.replacingOccurrences(of: "A man", with: "A woman").utf8).write(to: b.appendingPathComponent("dev.jsonl"))
    XCTAssertNotEqual(try data(a), try data(b))
    try Data(UserTaskTests.pairs.utf8).write(to: b.appendingPathComponent("dev.jsonl"))
    try Data("{\"name\": \"same\", \"metric\": \"mcc\"}".utf8).write(to: b.appendingPathComponent("task.json"))
    XCTAssertNotEqual(try data(a), try data(b), "task.json is part of the inputs")
  }

  /// `report` never sees a user task's folder: it ranks by the metric the record names.
  func testReportRanksByTheMetricTheRecordNames() throws {
    var o = TrainOptions(); o.seed = 1
    let spec = CellSpec(task: "mine", modules: ["layernorm"], layers: .all, model: "m", options: o)
    var result = CellResult(status: .ok, dev: ["f1": 0.8, "accuracy": 0.6], trainableParameters: 1, totalParameters: 2)
    result.primaryMetric = "f1"
    let record = JournalRecord(spec: spec, result: result, worker: 0)
    XCTAssertEqual(record.score, 0.8)
    let results = try StudyResults(records: [record])
    XCTAssertEqual(results.metrics, ["mine": "f1"])
    XCTAssertEqual(results.label(task: "mine"), "mine (f1)")
    // Written before records named their metric: a built-in task's is known, another task's is not.
    var builtIn = record
    builtIn.spec.task = "mrpc"; builtIn.result.primaryMetric = nil
    XCTAssertEqual(builtIn.primaryMetric, "f1")
    var unnamed = record
    unnamed.result.primaryMetric = nil
    let journal = try temporaryFolder("petl-journal").appendingPathComponent("journal.jsonl")
    try (RecordCodec.encoder.encode(unnamed) + Data("\n".utf8)).write(to: journal)
    assertError("\(journal.path):1: ok record for \(spec.label) names no primary metric, and mine is not a built-in task") {
      _ = try StudyJournal.load([journal])
    }
  }
}

import XCTest
@testable import PETLTraining
@testable import PETLStudy

final class JournalTests: XCTestCase {
  private var folder: URL!

  override func setUpWithError() throws {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)")
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: folder)
  }

  static func spec(_ seed: UInt64) -> CellSpec {
    var o = TrainOptions(); o.seed = seed
    return CellSpec(task: "rte", modules: ["layernorm"], layers: .all, model: "all-MiniLM-L6-v2", options: o)
  }

  static func okResult(_ accuracy: Double) -> CellResult {
    CellResult(status: .ok, dev: ["accuracy": accuracy],
               epochs: [.init(epoch: 1, trainLoss: 0.69, dev: ["accuracy": accuracy], seconds: 2.5)],
               trainableParameters: 9984, totalParameters: 22_713_216, steps: 78,
               allreduceBytesPerStep: 39_936, wallSeconds: 3.25, ranks: 2)
  }

  func testAppendThenReopenGivesTheSameRecordsWithSnakeCaseKeys() throws {
    let url = folder.appendingPathComponent("sub/journal.jsonl")
    var diverged = CellResult.failed(reason: "diverged: loss is nan at step 12", wallSeconds: 1, ranks: 1)
    diverged.epochs = [.init(epoch: 1, trainLoss: .nan, dev: [:], seconds: 1)]
    do {
      let j = try Journal(url: url)
      try j.append(JournalRecord(spec: Self.spec(1), result: Self.okResult(0.61), worker: 0))
      try j.append(JournalRecord(spec: Self.spec(2), result: diverged, worker: 2))
    }
    let text = try String(contentsOf: url, encoding: .utf8)
    XCTAssertEqual(text.split(separator: "\n").count, 2)
    for key in ["\"spec_hash\"", "\"trainable_parameters\"", "\"total_parameters\"", "\"allreduce_bytes_per_step\"",
                "\"wall_seconds\"", "\"train_loss\"", "\"finished_at\"", "\"worker\":2", "\"status\":\"failed\""] {
      XCTAssertTrue(text.contains(key), "missing \(key) in \(text)")
    }
    XCTAssertNotNil(text.range(of: #""finished_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ""#, options: .regularExpression))
    let j = try Journal(url: url)
    XCTAssertEqual(j.records.count, 2)
    XCTAssertEqual(j.records[0].result, Self.okResult(0.61))
    XCTAssertEqual(j.records[0].specHash, Self.spec(1).hash)
    XCTAssertEqual(j.records[0].spec, Self.spec(1))
    XCTAssertTrue(j.records[1].result.epochs[0].trainLoss.isNaN)
    XCTAssertEqual(j.done(inputs: [:]).ok, [Self.spec(1).hash])
    XCTAssertEqual(j.done(inputs: [:]).failed, [Self.spec(2).hash])
  }

  /// `hosts` (the host of each rank of the group) is written when known and optional when read: a
  /// journal written before it was recorded stays readable.
  func testHostsAreRecordedAndOldRecordsWithoutThemStillRead() throws {
    let url = folder.appendingPathComponent("hosts/journal.jsonl")
    do {
      let j = try Journal(url: url)
      try j.append(JournalRecord(spec: Self.spec(1), result: Self.okResult(0.61), worker: 2, hosts: ["n2", "n3"]))
      try j.append(JournalRecord(spec: Self.spec(2), result: Self.okResult(0.62), worker: 0))
    }
    let text = try String(contentsOf: url, encoding: .utf8)
    let lines = text.split(separator: "\n")
    XCTAssertTrue(lines[0].contains(#""hosts":["n2","n3"]"#), String(lines[0]))
    XCTAssertFalse(lines[1].contains("hosts"), "no key when unknown: \(lines[1])")
    let j = try Journal(url: url)
    XCTAssertEqual(j.records.map(\.hosts), [["n2", "n3"], nil])
    XCTAssertEqual(j.done(inputs: [:]).ok, [Self.spec(1).hash, Self.spec(2).hash])
  }

  func testALaterOkRecordClearsAnEarlierFailure() throws {
    let j = try Journal(url: folder.appendingPathComponent("j.jsonl"))
    try j.append(JournalRecord(spec: Self.spec(1), result: .failed(reason: "x", wallSeconds: 0, ranks: 1), worker: 0))
    try j.append(JournalRecord(spec: Self.spec(1), result: Self.okResult(0.5), worker: 0))
    XCTAssertEqual(j.done(inputs: [:]).ok, [Self.spec(1).hash])
    XCTAssertTrue(j.done(inputs: [:]).failed.isEmpty)
  }

  func testTornLastLineIsMovedAsideAndCutAway() throws {
    let url = folder.appendingPathComponent("j.jsonl")
    do { try Journal(url: url).append(JournalRecord(spec: Self.spec(1), result: Self.okResult(0.6), worker: 0)) }
    let good = try Data(contentsOf: url)
    let torn = Data(#"{"spec":{"task":"rte","mod"#.utf8)
    try (good + torn).write(to: url)
    do {
      let j = try Journal(url: url)
      XCTAssertEqual(j.records.count, 1)
      XCTAssertEqual(try Data(contentsOf: url), good, "the journal is cut back to its last complete line")
      let aside = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("j.jsonl.torn-") }
      XCTAssertEqual(aside.count, 1)
      XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent(aside[0])), torn)
      try j.append(JournalRecord(spec: Self.spec(2), result: Self.okResult(0.7), worker: 0))
    }
    XCTAssertEqual(try Journal(url: url).records.map(\.spec), [Self.spec(1), Self.spec(2)])
  }

  /// A complete (newline-ended) last line that does not decode is set aside with a note, not cut
  /// silently; a second one in the same second gets its own file.
  func testUndecodableCompleteLastLineIsSetAsideWithANoteAndNeverOverwritten() throws {
    let url = folder.appendingPathComponent("j.jsonl")
    do { try Journal(url: url).append(JournalRecord(spec: Self.spec(1), result: Self.okResult(0.6), worker: 0)) }
    let good = try Data(contentsOf: url)
    for bad in ["{\"spec\": 1}\n", "not json either\n"] {
      try (good + Data(bad.utf8)).write(to: url)
      let j = try Journal(url: url)
      XCTAssertEqual(j.records.count, 1)
      XCTAssertEqual(j.notes.count, 1)
      XCTAssertTrue(j.notes[0].contains("moved to \(url.path).torn-"), j.notes[0])
      XCTAssertEqual(try Data(contentsOf: url), good)
    }
    let aside = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("j.jsonl.torn-") }
    XCTAssertEqual(aside.count, 2, "\(aside)")
    let contents = try Set(aside.map { try String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8) })
    XCTAssertEqual(contents, ["{\"spec\": 1}\n", "not json either\n"])
  }

  func testUnreadableMiddleLineIsAnErrorNamingFileAndLineAndLeavesTheFileAlone() throws {
    let url = folder.appendingPathComponent("j.jsonl")
    do {
      let j = try Journal(url: url)
      for seed: UInt64 in 1...3 { try j.append(JournalRecord(spec: Self.spec(seed), result: Self.okResult(0.6), worker: 0)) }
    }
    var lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
    lines[1] = "{\"spec\": garbage"
    let corrupted = Data(lines.joined(separator: "\n").utf8)
    try corrupted.write(to: url)
    XCTAssertThrowsError(try Journal(url: url)) { error in
      XCTAssertTrue("\(error)".contains("j.jsonl:2:"), "\(error)")
      XCTAssertFalse("\(error)".contains("\n"))
    }
    XCTAssertEqual(try Data(contentsOf: url), corrupted)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["j.jsonl"])
  }

  /// A hostile value in a record (here a 10,000-character status) is named, not quoted whole: the
  /// report's error stays one short line naming the file and line (found by launch/test's fuzz).
  func testAHostileValueGivesAShortErrorLine() throws {
    let url = folder.appendingPathComponent("j.jsonl")
    do {
      let j = try Journal(url: url)
      try j.append(JournalRecord(spec: Self.spec(1), result: Self.okResult(0.6), worker: 0))
    }
    let text = try String(contentsOf: url, encoding: .utf8)
    let hostile = text.replacingOccurrences(of: "\"status\":\"ok\"", with: "\"status\":\"" + String(repeating: "x", count: 10_000) + "\"")
    XCTAssertNotEqual(hostile, text, "the record has a status to replace")
    try Data((text + hostile).utf8).write(to: url)
    XCTAssertThrowsError(try StudyJournal.load([url])) { error in
      let line = "\(error)"
      XCTAssertTrue(line.contains("j.jsonl:2: not a journal record"), line)
      XCTAssertLessThan(line.count, 300, line)
      XCTAssertFalse(line.contains("\n"))
    }
  }

  func testFailedFsyncMeansTheCellIsNotDone() throws {
    let j = try Journal(url: folder.appendingPathComponent("j.jsonl"), sync: { _ in errno = EIO; return -1 })
    XCTAssertThrowsError(try j.append(JournalRecord(spec: Self.spec(1), result: Self.okResult(0.6), worker: 0))) {
      XCTAssertTrue("\($0)".contains("fsync"), "\($0)")
    }
    XCTAssertTrue(j.records.isEmpty)
    XCTAssertTrue(j.done(inputs: [:]).ok.isEmpty)
  }

  func testASecondWriterIsRefused() throws {
    let url = folder.appendingPathComponent("j.jsonl")
    let first = try Journal(url: url)
    XCTAssertThrowsError(try Journal(url: url)) { XCTAssertTrue("\($0)".contains("in use"), "\($0)") }
    _ = first
  }
}

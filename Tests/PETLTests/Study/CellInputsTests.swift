import Foundation
import XCTest
@testable import PETLModel
@testable import PETLData
@testable import PETLTraining
@testable import PETLStudy

/// Content identity of a cell: file fingerprints (cached by size and mtime), what the journal counts
/// as done, and what the report pools.
final class CellInputsTests: XCTestCase {
  private var folder: URL!

  override func setUpWithError() throws {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("inputs-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

  func testHashSeesEveryByteAndTheLength() {
    var bytes = [UInt8](repeating: 7, count: 1000)
    let base = FileFingerprints.hash(Data(bytes))
    var seen: Set<String> = [base]
    for i in [0, 1, 8, 31, 32, 500, 991, 999] {
      bytes[i] ^= 1
      XCTAssertTrue(seen.insert(FileFingerprints.hash(Data(bytes))).inserted, "byte \(i)")
      bytes[i] ^= 1
    }
    XCTAssertEqual(FileFingerprints.hash(Data(bytes)), base)
    XCTAssertNotEqual(FileFingerprints.hash(Data(bytes + [0])), base, "a trailing zero byte changes it")
    XCTAssertNotEqual(FileFingerprints.hash(Data()), FileFingerprints.hash(Data([0])))
  }

  func testCacheIsKeyedBySizeAndModificationTime() throws {
    let file = folder.appendingPathComponent("train.tsv"), cache = folder.appendingPathComponent("cache/f.json")
    try Data("a\t1\nb\t0\n".utf8).write(to: file)
    let first = try FileFingerprints(cacheURL: cache).fingerprint(file)
    _ = try FileFingerprints(cacheURL: cache).combined([file])  // writes the cache
    XCTAssertTrue(FileManager.default.fileExists(atPath: cache.path))
    // The same size, another content, another mtime: hashed again, not served from the cache.
    try Data("a\t0\nb\t1\n".utf8).write(to: file)
    try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 10)], ofItemAtPath: file.path)
    let second = try FileFingerprints(cacheURL: cache).fingerprint(file)
    XCTAssertNotEqual(first, second)
    XCTAssertEqual(second, FileFingerprints.hash(try Data(contentsOf: file)))
    // A cache entry is trusted while size and mtime hold: prove it is read by planting a value.
    let fp = FileFingerprints(cacheURL: cache)
    _ = try fp.combined([file])
    var planted = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: cache))
    XCTAssertEqual(planted.count, 1, "one entry per path: the stale one is replaced")
    planted[planted.keys.first!] = "0123456789abcdef"
    try JSONEncoder().encode(planted).write(to: cache)
    XCTAssertEqual(try FileFingerprints(cacheURL: cache).fingerprint(file), "0123456789abcdef")
  }

  func testMissingFileIsOneLineNamingIt() {
    let missing = folder.appendingPathComponent("nope.tsv")
    XCTAssertThrowsError(try FileFingerprints(cacheURL: nil).fingerprint(missing)) {
      XCTAssertTrue("\($0)".hasPrefix(missing.path), "\($0)")
    }
  }

  func testTaskInputsAreTheFilesItsReadersOpen() throws {
    let dir = URL(fileURLWithPath: "/d")
    XCTAssertEqual(try TaskDescriptor.named("rte").inputFiles(dataDirectory: dir).map(\.path), ["/d/RTE/train.tsv", "/d/RTE/dev.tsv"])
    XCTAssertEqual(try TaskDescriptor.named("mnli").inputFiles(dataDirectory: dir).map(\.lastPathComponent),
                   ["train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"])
    XCTAssertEqual(try TaskDescriptor.named("rt-vader").inputFiles(dataDirectory: dir).map(\.path),
                   ["/d/rt-vader/movieReviewSnippets_GroundTruth.txt"])
  }

  /// A journal counts a cell as done only with the current inputs; old journals (no inputs) load.
  func testJournalCountsOnlyRecordsOfTheCurrentInputs() throws {
    let url = folder.appendingPathComponent("j.jsonl")
    let now = CellInputs(data: "d1", model: "m1")
    do {
      let j = try Journal(url: url)
      try j.append(JournalRecord(spec: JournalTests.spec(1), result: JournalTests.okResult(0.6), worker: 0, inputs: now))
      try j.append(JournalRecord(spec: JournalTests.spec(2), result: JournalTests.okResult(0.6), worker: 0,
                                 inputs: CellInputs(data: "d0", model: "m1")))
      try j.append(JournalRecord(spec: JournalTests.spec(3), result: JournalTests.okResult(0.6), worker: 0))
      try j.append(JournalRecord(spec: JournalTests.spec(4), result: JournalTests.okResult(0.6), worker: 0,
                                 inputs: CellInputs(data: "d1", model: "m1", engine: Engine.numericsVersion - 1)))
      try j.append(JournalRecord(spec: JournalTests.spec(5), result: .failed(reason: "diverged", wallSeconds: 1, ranks: 1),
                                 worker: 0, inputs: CellInputs(data: "d1", model: "m0")))
    }
    let text = try String(contentsOf: url, encoding: .utf8)
    XCTAssertEqual(text.split(separator: "\n").filter { $0.contains("\"inputs\"") }.count, 4, "no inputs key when none are known")
    let done = try Journal(url: url).done(inputs: ["rte": now])
    XCTAssertEqual(done.ok, [JournalTests.spec(1).hash])
    XCTAssertEqual(done.stale, Set([2, 3, 4].map { JournalTests.spec(UInt64($0)).hash }))
    XCTAssertTrue(done.failed.isEmpty, "a failure on other weights is not a reason to skip")
    XCTAssertEqual(done.why, ["rte: data", "rte: inputs not recorded (older journal)",
                              "rte: engine numerics v\(Engine.numericsVersion - 1) -> v\(Engine.numericsVersion)", "rte: model"])
    XCTAssertEqual(try Journal(url: url).done(inputs: [:]).ok.count, 4, "without current inputs every ok record counts")
  }

  /// The report pools only the records of each task's newest inputs and lists the others apart.
  func testReportNeverPoolsRecordsOfDifferentInputs() throws {
    let url = folder.appendingPathComponent("j.jsonl")
    let old = CellInputs(data: "d0", model: "m1"), now = CellInputs(data: "d1", model: "m1")
    do {
      let j = try Journal(url: url)
      for seed: UInt64 in 1...2 {
        try j.append(JournalRecord(spec: JournalTests.spec(seed), result: JournalTests.okResult(0.9), worker: 0, inputs: old))
      }
      for seed: UInt64 in 1...2 {
        try j.append(JournalRecord(spec: JournalTests.spec(seed), result: JournalTests.okResult(0.5), worker: 0, inputs: now))
      }
    }
    let report = try StudyReport(journals: [url])
    XCTAssertEqual(report.results.records.count, 2)
    XCTAssertTrue(report.results.records.allSatisfy { $0.inputs == now })
    XCTAssertEqual(report.setAside.count, 2)
    let md = report.markdown()
    XCTAssertTrue(md.contains("## Set aside: other inputs"), md)
    XCTAssertTrue(md.contains("data: 2 record(s)"), md)
    XCTAssertFalse(md.contains("90.0"), "the old runs' 0.9 is not in any table")
    XCTAssertTrue(md.contains("50.0"), md)
  }

  /// The watchdog's bound: fixed by --cell-timeout, else 5x the fitted prediction + 120 s, and before
  /// any fit a prior far slower than any node.
  func testWatchdogBound() throws {
    let spec = JournalTests.spec(1)
    var cost = CostModel(layout: TestSupport.miniLMLayout())
    cost.hiddenSize = 384
    XCTAssertEqual(Watchdog(fixedSeconds: 7).bound(spec, cost: cost).seconds, 7)
    let prior = Watchdog().bound(spec, cost: cost)
    XCTAssertEqual(prior.seconds, 5 * cost.priorSeconds(spec) + 120, accuracy: 1e-6)
    XCTAssertTrue(prior.why.contains("prior estimate"), prior.why)
    cost.observe(spec, seconds: 10)
    let fitted = Watchdog().bound(spec, cost: cost)
    XCTAssertEqual(fitted.seconds, 5 * 10 + 120, accuracy: 1e-6)
    XCTAssertGreaterThan(prior.seconds, 10 * fitted.seconds, "the prior is generous")
  }
}

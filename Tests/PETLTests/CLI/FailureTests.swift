import Foundation
import XCTest
import PETLDistributed
@testable import PETLStudy

/// Failure semantics under a real `mpirun`: every error on any rank ends the whole job within seconds
/// with one line naming the rank and the cause; a stop request at any moment gives exit 75 and a clean
/// resume; a cell is done only for the inputs it was trained on. Faults that real input cannot cause
/// on one rank only are injected with `SWIFT_PETL_FAULT` (Sources/swift-petl/FaultInjection.swift).
final class FailureTests: XCTestCase {
  static let data = TestSupport.root.appendingPathComponent("data")
  static let tiny = GridTests.tiny
  /// The issue's bound for "ends within seconds", with room for a loaded CI machine.
  static let endsWithin: TimeInterval = 45

  func gridArgv(_ ranks: Int, _ args: [String], results: URL, dataDir: URL = data, model: URL = TestSupport.modelDir) -> [String] {
    var argv = ["mpirun", "-n", String(ranks)]
    if ranks > 2 { argv.append("--oversubscribe") }
    return argv + [TestSupport.binary, "grid", "--model", model.path, "--data-dir", dataDir.path,
                   "--tasks", "rt-vader", "--results", results.path] + Self.tiny + args
  }

  /// Runs a grid that must END (not hang) and returns its status, output and seconds taken.
  func grid(_ ranks: Int, _ args: [String], results: URL, env: [String: String] = [:],
            file: StaticString = #filePath, line: UInt = #line) throws -> (status: Int32, output: String, seconds: Double) {
    let start = Date()
    var extra = GridTests.env
    extra["XDG_CACHE_HOME"] = results.appendingPathComponent("cache").path
    extra.merge(env) { $1 }
    let run = try TestSupport.launch(gridArgv(ranks, args, results: results), extra: extra, timeout: 180, file: file, line: line)
    return (run.status, run.output, Date().timeIntervalSince(start))
  }

  /// This machine's host name, as `Communicator.failJob` names it.
  static var host: String {
    var name = [CChar](repeating: 0, count: 256)
    gethostname(&name, name.count - 1)
    return String(cString: name)
  }

  /// Asserts the job failed fast with exactly one `Error: rank R of N on HOST: ...` line containing `cause`.
  func assertEndedFast(_ run: (status: Int32, output: String, seconds: Double), rank: Int, of ranks: Int, cause: String,
                       file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertNotEqual(run.status, 0, run.output, file: file, line: line)
    XCTAssertLessThan(run.seconds, Self.endsWithin, run.output, file: file, line: line)
    let errors = run.output.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
    XCTAssertEqual(errors.count, 1, run.output, file: file, line: line)
    XCTAssertTrue(errors.first?.hasPrefix("Error: rank \(rank) of \(ranks) on \(Self.host): ") == true, run.output, file: file, line: line)
    XCTAssertTrue(errors.first?.contains(cause) == true, "expected '\(cause)' in: \(run.output)", file: file, line: line)
  }

  func journalLines(_ results: URL) throws -> [[String: Any]] {
    let url = results.appendingPathComponent("journal.jsonl")
    guard FileManager.default.fileExists(atPath: url.path) else { return [] }
    return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
      try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
  }

  // MARK: start-up

  func testRankZeroStartUpErrorsEndTheJob() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-fail")
    let journal = out.appendingPathComponent("journal.jsonl")
    // A corrupt line in the middle (hung 90-120 s before: rank 0 finalized while rank 1 waited).
    let corrupt = Data("{\"x\":1}\n{not json\n{\"x\":2}\n".utf8)
    try corrupt.write(to: journal)
    assertEndedFast(try grid(2, ["--modules", "ln_out", "--layers", "5"], results: out), rank: 0, of: 2,
                    cause: "journal.jsonl:1: unreadable journal record")
    XCTAssertEqual(try Data(contentsOf: journal), corrupt, "left untouched")
    // A journal locked by another process (a grid still draining).
    try FileManager.default.removeItem(at: journal)
    let fd = open(journal.path, O_RDWR | O_CREAT, 0o644)
    XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0)
    defer { close(fd) }
    assertEndedFast(try grid(2, ["--modules", "ln_out", "--layers", "5"], results: out), rank: 0, of: 2,
                    cause: "journal is in use by another running grid")
  }

  /// `--match ""` used to index an empty array (a trap, or an out-of-bounds read when unchecked).
  func testEmptyMatchIsABadFlagNotATrap() throws {
    try requireModelAndData()
    for bad in ["", "@0"] {
      let run = try TestSupport.launch([TestSupport.binary, "grid", "--model", TestSupport.modelDir.path, "--modules", "random",
                                        "--match", bad, "--plan-only"], timeout: 60)
      XCTAssertEqual(run.status, 64, run.output)
      XCTAssertTrue(run.output.contains("Error: --match '\(bad)': expected SET[@LAYERS]"), run.output)
    }
  }

  /// An error inside a one-rank grid (no mpirun) used to finalize MPI under the coordinator thread and
  /// crash (SIGSEGV, no message); now it is one line and exit 1, with and without mpirun.
  func testErrorInsideAOneRankGridIsOneLineNotACrash() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-fail")
    let model = out.appendingPathComponent("no-weights")
    try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
    for f in ["config.json", "vocab.txt", "tokenizer_config.json"] {
      try FileManager.default.copyItem(at: TestSupport.modelDir.appendingPathComponent(f), to: model.appendingPathComponent(f))
    }
    let argv = [TestSupport.binary, "grid", "--model", model.path, "--data-dir", Self.data.path, "--tasks", "rt-vader",
                "--results", out.path, "--modules", "classifier"] + Self.tiny
    let alone = try TestSupport.launch(argv, extra: GridTests.env, timeout: 120)
    XCTAssertEqual(alone.status, 1, alone.output)
    let errors = alone.output.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
    XCTAssertEqual(errors.count, 1, alone.output)
    XCTAssertTrue(errors.first?.contains("model.safetensors") == true, alone.output)
    let start = Date()
    let ranked = try TestSupport.launch(gridArgv(2, ["--modules", "classifier"], results: out.appendingPathComponent("r2"), model: model),
                                        extra: GridTests.env, timeout: 120)
    XCTAssertNotEqual(ranked.status, 0, ranked.output)
    XCTAssertLessThan(Date().timeIntervalSince(start), Self.endsWithin)
    // Both ranks meet the missing file at once; each says so in one line naming it.
    let lines = ranked.output.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
    XCTAssertFalse(lines.isEmpty, ranked.output)
    XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("Error: rank ") && $0.contains("model.safetensors") }, ranked.output)
  }

  func testNonZeroRankStartUpErrorEndsTheJob() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-fail")
    let run = try grid(3, ["--modules", "ln_out", "--layers", "5"], results: out, env: ["SWIFT_PETL_FAULT": "startup@2"])
    assertEndedFast(run, rank: 2, of: 3, cause: "injected fault (SWIFT_PETL_FAULT=startup@2)")
  }

  /// Input that only one rank reads malformed (a task folder on a node-local path, here a path
  /// that names each rank's own copy): that rank's one line ends the whole job within seconds, while
  /// rank 0, whose copy is fine, is already waiting in the grid.
  func testMalformedInputOnOneRankOnlyEndsTheJob() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-fail")
    for rank in 0..<2 {
      let task = out.appendingPathComponent("node\(rank)/mytask")
      try FileManager.default.createDirectory(at: task, withIntermediateDirectories: true)
      let rows = (0..<24).map { "sentence \($0) is \($0 % 2 == 0 ? "fine" : "dull").\t\($0 % 2 == 0 ? "pos" : "neg")" }
      try (["sentence\tlabel"] + rows).joined(separator: "\n").appending("\n")
        .write(to: task.appendingPathComponent("train.tsv"), atomically: true, encoding: .utf8)
      var dev = Array(rows.prefix(16))
      if rank == 1 { dev[5] = "a row whose label is not one of the task's\tmeh" }
      try (["sentence\tlabel"] + dev).joined(separator: "\n").appending("\n")
        .write(to: task.appendingPathComponent("dev.tsv"), atomically: true, encoding: .utf8)
    }
    // Each rank's --tasks names its node's folder (the same task name, "mytask").
    let tasks = out.path + "/node$OMPI_COMM_WORLD_RANK/mytask"
    let argv = ["mpirun", "-n", "2", "/bin/sh", "-c", #"exec "$0" "$@" --tasks "\#(tasks)""#, TestSupport.binary, "grid",
                "--model", TestSupport.modelDir.path, "--results", out.appendingPathComponent("results").path,
                "--modules", "ln_out", "--layers", "5"] + Self.tiny
    var env = GridTests.env
    env["XDG_CACHE_HOME"] = out.appendingPathComponent("cache").path
    let start = Date()
    let run = try TestSupport.launch(argv, extra: env, timeout: 180)
    assertEndedFast((run.status, run.output, Date().timeIntervalSince(start)), rank: 1, of: 2,
                    cause: "node1/mytask/dev.tsv:7: unknown label 'meh'")
  }

  // MARK: inside the grid

  /// A follower's error inside a `--dp 2` group used to be swallowed, putting the group's
  /// collectives out of step. It now ends the job, and no record claims the cell.
  func testFollowerFailureInsideADataParallelGroupEndsTheJob() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-fail")
    let run = try grid(2, ["--modules", "ln_out", "--layers", "5", "--dp", "2"], results: out,
                       env: ["SWIFT_PETL_FAULT": "cell@1"])
    assertEndedFast(run, rank: 1, of: 2, cause: "injected fault (SWIFT_PETL_FAULT=cell@1)")
    XCTAssertTrue(try journalLines(out).isEmpty)
  }

  /// A rank that hangs in its cell: rank 0's watchdog ends the job naming the rank and the cell; the
  /// other rank's cell stays journaled and a rerun does only the hung one.
  func testWatchdogEndsTheJobWhenARankHangsAndTheRerunResumes() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-fail")
    let args = ["--modules", "ln_out", "--layers", "4,5"]
    let run = try grid(2, args + ["--cell-timeout", "4"], results: out, env: ["SWIFT_PETL_FAULT": "hang@1"])
    assertEndedFast(run, rank: 0, of: 2, cause: "watchdog: rank 1 on \(Self.host) has not reported cell rt-vader ln_out@")
    XCTAssertTrue(run.output.contains("--cell-timeout 4s"), run.output)
    let first = try journalLines(out)
    XCTAssertEqual(first.count, 1, "rank 0's cell finished and is journaled: \(run.output)")
    let rerun = try grid(2, args, results: out)
    XCTAssertEqual(rerun.status, 0, rerun.output)
    XCTAssertTrue(rerun.output.contains("1 already ok"), rerun.output)
    let lines = try journalLines(out)
    XCTAssertEqual(lines.count, 2)
    XCTAssertEqual(Set(lines.map { $0["spec_hash"] as! String }).count, 2)
  }

  // MARK: stop requests

  /// Starts mpirun (no `timeout` wrapper: the signal goes to mpirun itself, which forwards it).
  func spawnGrid(_ ranks: Int, _ args: [String], results: URL) throws -> Process {
    try spawn(gridArgv(ranks, args, results: results), results: results)
  }

  /// Starts `argv` (through env) with the grid tests' environment, its output in `results`/spawn.log,
  /// the stop signals unblocked; the caller ends it with `end(_:within:)`.
  func spawn(_ argv: [String], results: URL) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    var env = TestSupport.childEnvironment(GridTests.env)
    env["XDG_CACHE_HOME"] = results.appendingPathComponent("cache").path
    p.environment = env
    let log = results.appendingPathComponent("spawn.log")
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let handle = try FileHandle(forWritingTo: log)
    p.standardOutput = handle
    p.standardError = handle
    try StopSignal.unblockedForChildren { try p.run() }
    return p
  }

  /// Waits for `p` to end within `seconds`; kills it (and fails) otherwise.
  func end(_ p: Process, within seconds: TimeInterval, file: StaticString = #filePath, line: UInt = #line) -> Int32 {
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning {
      XCTFail("mpirun did not end within \(seconds) s", file: file, line: line)
      kill(p.processIdentifier, SIGKILL)
    }
    p.waitUntilExit()
    return p.terminationStatus
  }

  func testStopRequestAtStartAndMidGridGiveExit75AndACleanResume() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-fail")
    let args = ["--modules", "ln_out,ln_attn", "--layers", "3,4,5", "--max-train", "96"]
    // 0.2 s after mpirun starts: the ranks are loading; the request is kept and acted on.
    let early = try spawnGrid(2, args, results: out)
    usleep(200_000)
    kill(early.processIdentifier, SIGUSR1)
    XCTAssertEqual(end(early, within: Self.endsWithin), GridSummary.resumableExitCode,
                   (try? String(contentsOf: out.appendingPathComponent("spawn.log"), encoding: .utf8)) ?? "")
    let afterEarly = try journalLines(out).count
    XCTAssertLessThan(afterEarly, 6)
    // Mid-grid: once a cell is journaled.
    let mid = try spawnGrid(2, args, results: out)
    let journal = out.appendingPathComponent("journal.jsonl")
    let deadline = Date().addingTimeInterval(120)
    while Date() < deadline, (try? journalLines(out).count) ?? 0 <= afterEarly { usleep(20_000) }
    kill(mid.processIdentifier, SIGUSR1)
    XCTAssertEqual(end(mid, within: Self.endsWithin), GridSummary.resumableExitCode,
                   (try? String(contentsOf: out.appendingPathComponent("spawn.log"), encoding: .utf8)) ?? "")
    let before = try Data(contentsOf: journal)
    let stopped = try journalLines(out).count
    XCTAssertGreaterThan(stopped, afterEarly)
    XCTAssertLessThan(stopped, 6, "stopped before the end")
    let rerun = try grid(2, args, results: out)
    XCTAssertEqual(rerun.status, 0, rerun.output)
    try assertResumedJournal(journal, keeps: before, cells: 6)
  }

  /// The batch script's stop file (written when Slurm's warning reaches the batch shell) stops a
  /// grid that has not started yet: no cell is handed out, exit 75.
  func testStopFileStopsTheGridBeforeAnyCell() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-fail")
    let stop = out.appendingPathComponent("stop")
    _ = FileManager.default.createFile(atPath: stop.path, contents: nil)
    let run = try grid(2, ["--modules", "ln_out", "--layers", "4,5"], results: out, env: ["SWIFT_PETL_STOP_FILE": stop.path])
    XCTAssertEqual(run.status, GridSummary.resumableExitCode, run.output)
    XCTAssertTrue(run.output.contains("stop file received: no new cells"), run.output)
    XCTAssertTrue(try journalLines(out).isEmpty)
  }

  // MARK: content identity

  /// The same command after the training data changed, or with other weights under the same folder
  /// name, reruns the cells (they used to be reported "already ok"), and the report keeps the old
  /// results apart.
  func testChangedDataOrWeightsRerunTheCells() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-fail")
    let dataDir = out.appendingPathComponent("data"), model = out.appendingPathComponent("m/all-MiniLM-L6-v2")
    try FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: Self.data.appendingPathComponent("rt-vader"), to: dataDir.appendingPathComponent("rt-vader"))
    try FileManager.default.createDirectory(at: model.deletingLastPathComponent(), withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: TestSupport.modelDir, to: model)
    let results = out.appendingPathComponent("results")
    func run() throws -> (status: Int32, output: String) {
      var env = GridTests.env
      env["XDG_CACHE_HOME"] = out.appendingPathComponent("cache").path
      let argv = [TestSupport.binary, "grid", "--model", model.path, "--data-dir", dataDir.path, "--tasks", "rt-vader",
                  "--results", results.path, "--modules", "classifier"] + Self.tiny
      return try TestSupport.launch(argv, extra: env, timeout: 180)
    }
    XCTAssertEqual(try run().status, 0)
    let again = try run()
    XCTAssertTrue(again.output.contains("1 already ok"), again.output)
    // Every label flipped (the sign of each score), same command, same journal.
    let file = dataDir.appendingPathComponent("rt-vader/movieReviewSnippets_GroundTruth.txt")
    let flipped = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
      var f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
      if f.count >= 2, let v = Double(f[1]) { f[1] = String(-v) }
      return f.joined(separator: "\t")
    }.joined(separator: "\n")
    try flipped.write(to: file, atomically: true, encoding: .utf8)
    let afterData = try run()
    XCTAssertEqual(afterData.status, 0, afterData.output)
    XCTAssertTrue(afterData.output.contains("0 already ok"), afterData.output)
    XCTAssertTrue(afterData.output.contains("trained on other inputs (rt-vader: data)"), afterData.output)
    // Other weights under the same folder name: the last float of the file nudged by one ulp.
    let weights = model.appendingPathComponent("model.safetensors")
    let handle = try FileHandle(forUpdating: weights)
    let size = try handle.seekToEnd()
    try handle.seek(toOffset: size - 4)
    var last = try handle.read(upToCount: 4)!
    last[0] ^= 1
    try handle.seek(toOffset: size - 4)
    try handle.write(contentsOf: last)
    try handle.close()
    let afterModel = try run()
    XCTAssertEqual(afterModel.status, 0, afterModel.output)
    XCTAssertTrue(afterModel.output.contains("trained on other inputs (rt-vader: data, model; rt-vader: model)"), afterModel.output)
    let lines = try journalLines(results)
    XCTAssertEqual(lines.count, 3)
    XCTAssertEqual(Set(lines.map { $0["spec_hash"] as! String }).count, 1, "one cell, three inputs")
    let report = try String(contentsOf: results.appendingPathComponent("report/report.md"), encoding: .utf8)
    XCTAssertTrue(report.contains("2 record(s) are NOT in the tables above: trained on other inputs"), report)
  }
}

import XCTest
@testable import PETLTraining
@testable import PETLDistributed
@testable import PETLStudy

/// The coordinator in-process, as an MPI singleton (rank 0 coordinates and trains in group 0).
final class CoordinatorTests: XCTestCase {
  private var folder: URL!
  private var world: Communicator!

  override func setUpWithError() throws {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("coord-\(UUID().uuidString)")
    world = try Communicator.world()
    StopSignal.reset()
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: folder)
    StopSignal.reset()
  }

  private func cells() throws -> [PlannedCell] {
    try GridPlan(tasks: ["rte", "mrpc"], modules: [["query"], ["layernorm"]], layers: .list([0, 5]), seeds: [1, 2],
                 learningRates: nil, base: TrainOptions(), model: "all-MiniLM-L6-v2", numLayers: 6).planned
  }

  /// Deterministic: accuracy from the hash; cells whose label contains `failing` fail by themselves
  /// (`CellFailure`, as a diverged cell does).
  final class Recorder: @unchecked Sendable {
    var ran: [CellSpec] = []
    var lines: [String] = []
    let lock = NSLock()
    func add(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
  }

  private func run(_ cells: [PlannedCell], retryFailed: Bool = false, failing: String? = nil,
                   onCell: ((Int) -> Void)? = nil) throws -> (GridSummary, Recorder) {
    let recorder = Recorder()
    let journal = try Journal(url: folder.appendingPathComponent("journal.jsonl"))
    let summary = try Coordinator.runGrid(
      cells: cells, journal: journal, world: world, dp: 1, retryFailed: retryFailed,
      cost: CostModel(layout: TestSupport.miniLMLayout()),
      runner: { cell, group in
        let spec = cell.spec
        XCTAssertEqual(cell.id, spec.hash)
        XCTAssertEqual(group.size, 1)
        recorder.ran.append(spec)
        onCell?(recorder.ran.count)
        if let failing, spec.label.contains(failing) { throw CellFailure("diverged: loss is nan at step 3") }
        let accuracy = Double(Int(spec.hash.prefix(4), radix: 16)!) / 65536
        return CellResult(status: .ok, dev: ["accuracy": accuracy], steps: 10, wallSeconds: 0.5, ranks: group.size)
      },
      log: { recorder.add($0) })
    return (summary, recorder)
  }

  func testEveryCellRunsExactlyOnceCostliestFirstAndIsJournaled() throws {
    let all = try cells()
    let (summary, recorder) = try run(all)
    XCTAssertEqual(recorder.ran.count, all.count)
    XCTAssertEqual(Set(recorder.ran.map(\.hash)), Set(all.map(\.id)))
    XCTAssertTrue(recorder.ran.prefix(8).allSatisfy { $0.layers == .indices([0]) }, "layer-0 cells cost most")
    XCTAssertEqual(summary.ok, all.count)
    XCTAssertEqual(summary.remaining, 0)
    XCTAssertFalse(summary.resumable)
    let journal = try Journal(url: folder.appendingPathComponent("journal.jsonl"))
    XCTAssertEqual(journal.done(inputs: [:]).ok, Set(all.map(\.id)))
    XCTAssertEqual(journal.records.map(\.worker), Array(repeating: 0, count: all.count))
    XCTAssertEqual(journal.records.map(\.hosts), Array(repeating: [world.processorName], count: all.count),
                   "each record names the host of its group's ranks")
    let progress = recorder.lines.filter { $0.hasPrefix("[") }
    XCTAssertEqual(progress.count, all.count)
    XCTAssertTrue(progress[0].hasPrefix("[1/16] "), progress[0])
    XCTAssertNotNil(progress[0].range(of: #"accuracy=0\.\d{4}  0\.5s  ETA \d+s"#, options: .regularExpression), progress[0])
    XCTAssertTrue(progress.last!.hasSuffix("done"), progress.last!)
  }

  func testRerunSkipsOkCellsAndRunsOnlyNewOnes() throws {
    let all = try cells()
    _ = try run(Array(all.prefix(5)))
    let (summary, recorder) = try run(all)
    XCTAssertEqual(summary.alreadyOK, 5)
    XCTAssertEqual(Set(recorder.ran.map(\.hash)), Set(all.dropFirst(5).map(\.id)))
    XCTAssertEqual(try Journal(url: folder.appendingPathComponent("journal.jsonl")).records.count, all.count)
  }

  func testCellFailuresBecomeFailedRecordsAndAreRetriedOnlyWhenAsked() throws {
    let all = try cells()
    let (first, _) = try run(all, failing: "mrpc layernorm")
    XCTAssertEqual(first.failed, 4)
    XCTAssertEqual(first.ok, all.count - 4)
    do {
      let journal = try Journal(url: folder.appendingPathComponent("journal.jsonl"))
      let failed = journal.records.filter { $0.result.status == .failed }
      XCTAssertEqual(failed.count, 4)
      XCTAssertEqual(failed[0].result.reason, "diverged: loss is nan at step 3")
    }
    let (skip, skipRecorder) = try run(all)
    XCTAssertEqual(skip.skippedFailed, 4)
    XCTAssertTrue(skipRecorder.ran.isEmpty)
    let (retry, retryRecorder) = try run(all, retryFailed: true)
    XCTAssertEqual(retry.ok, 4)
    XCTAssertEqual(retryRecorder.ran.map(\.task), Array(repeating: "mrpc", count: 4))
    XCTAssertTrue(try Journal(url: folder.appendingPathComponent("journal.jsonl")).done(inputs: [:]).failed.isEmpty)
  }

  func testSIGUSR1StopsHandingOutCellsAndTheRunningCellIsJournaled() throws {
    let all = try cells()
    let (summary, recorder) = try run(all, onCell: { n in
      guard n == 2 else { return }
      kill(getpid(), SIGUSR1)
      usleep(300_000)  // the signal source records it on its own queue
    })
    XCTAssertEqual(recorder.ran.count, 2, "no new cell after the signal")
    XCTAssertEqual(summary.ok, 2)
    XCTAssertEqual(summary.remaining, all.count - 2)
    XCTAssertEqual(summary.stoppedBy, SIGUSR1)
    XCTAssertTrue(summary.resumable)
    XCTAssertTrue(recorder.lines.contains { $0.contains("SIGUSR1 received") }, "\(recorder.lines)")
    StopSignal.reset()  // a new process in real life
    let (resumed, again) = try run(all)
    XCTAssertEqual(resumed.alreadyOK, 2)
    XCTAssertEqual(again.ran.count, all.count - 2)
  }

  func testDpMustDivideTheWorldAndRankZeroNeedsTheJournal() throws {
    XCTAssertThrowsError(try Coordinator.runGrid(
      cells: [], journal: nil, world: world, dp: 2, retryFailed: false, cost: CostModel(layout: TestSupport.miniLMLayout()),
      runner: { _, _ in CellResult(status: .ok) }, log: { _ in })) {
      XCTAssertTrue("\($0)".contains("--dp 2"), "\($0)")
    }
    XCTAssertThrowsError(try Coordinator.runGrid(
      cells: [], journal: nil, world: world, dp: 1, retryFailed: false, cost: CostModel(layout: TestSupport.miniLMLayout()),
      runner: { _, _ in CellResult(status: .ok) }, log: { _ in }))
  }
}

import Foundation
import PETLTraining
import PETLDistributed
import PETLSupport

/// How a grid run ended; every rank gets the same summary.
public struct GridSummary: Codable, Hashable, Sendable {
  /// Exit code for "stopped early by a signal, cells remain; run again to resume" (`EX_TEMPFAIL`).
  /// `launch/slurm.sbatch` requeues the job when the grid exits with it.
  public static let resumableExitCode: Int32 = 75

  /// Cells in the plan (after removing duplicates).
  public var planned = 0
  /// Skipped because the journal already has them `ok`.
  public var alreadyOK = 0
  /// Skipped because the journal has them `failed` and retrying was not asked for.
  public var skippedFailed = 0
  public var ok = 0
  public var failed = 0
  /// Cells not run because the grid was stopped.
  public var remaining = 0
  /// The signal that stopped the grid, if one did.
  public var stoppedBy: Int32? = nil

  /// True when the grid stopped with work left that a rerun would do.
  public var resumable: Bool { remaining > 0 }
}

/// Runs a grid of cells over the MPI world: rank 0 hands cells out and journals results; the world is
/// cut into groups of `dp` consecutive ranks that each train one cell at a time, data-parallel.
///
/// Rank 0 coordinates from a background thread that polls with sleeps (it costs no core) and trains
/// in group 0 on its main thread, so no rank idles. Cells go out costliest first (`CostModel`) to the
/// next group that asks. A cell that fails by itself (the runner throws `CellFailure`, or returns a
/// `failed` result: diverged) becomes a `failed` record and the grid goes on; any other error, on any
/// rank (a follower's included), propagates out of `runGrid` and the caller ends the job (fail fast:
/// the group's collectives are out of step). Rank 0's coordinator ends the job itself (`fatal`) when
/// the journal cannot be written or a group has not reported its cell within the watchdog's bound.
/// A stop request (SIGUSR1, SIGTERM, SIGINT on any rank, or the stop file) stops the handing out;
/// running cells finish and are journaled, then every rank returns the same `GridSummary`
/// (`resumable` means: exit with `GridSummary.resumableExitCode` so Slurm can requeue).
public enum Coordinator {
  static let reportTag = 11
  static let assignTag = 12

  /// - Parameters:
  ///   - journal: the open journal on world rank 0; nil on every other rank (only rank 0 may open it).
  ///   - runner: trains one cell on the group communicator; called on every rank of the group, which
  ///     must all return (or all throw) for the group's collectives to line up. The leader's result is
  ///     the one journaled.
  ///   - cost: orders the cells and gives the ETA (built with the model's layer count).
  ///   - log: progress lines; called on rank 0 only, from the coordinator thread.
  ///   - inputs: fingerprints of what each task's cells read (by task); a journal record counts as
  ///     done only when its inputs equal these. Empty: records count whatever inputs they name.
  ///   - watchdog: how long a group may take for a cell before the job is ended.
  ///   - fatal: ends the job from rank 0's coordinator thread (default: `Communicator.failJob`).
  @discardableResult
  public static func runGrid(cells: [PlannedCell], journal: Journal?, world: Communicator, dp: Int,
                             retryFailed: Bool, cost: CostModel, inputs: [String: CellInputs] = [:],
                             watchdog: Watchdog = Watchdog(),
                             runner: (PlannedCell, Communicator) throws -> CellResult,
                             log: @escaping @Sendable (String) -> Void,
                             fatal: @escaping @Sendable (String) -> Never = { Communicator.failJob($0) }) throws -> GridSummary {
    guard dp >= 1, world.size % dp == 0 else {
      throw PETLError("--dp \(dp): must be at least 1 and divide the world size \(world.size)")
    }
    if world.rank == 0 && journal == nil { throw PETLError("runGrid: rank 0 needs the journal") }
    StopSignal.install()
    let control = try world.duplicate()
    let group = try world.split(color: world.rank / dp, key: world.rank)
    // Every rank's host, for the journal's records and the lines that name a rank.
    let hosts = control.hostNames()

    var dispatcher: Dispatcher? = nil
    if world.rank == 0, let journal {
      let d = Dispatcher(cells: cells, journal: journal, control: control, groups: world.size / dp,
                         dp: dp, hosts: hosts, retryFailed: retryFailed, cost: cost, inputs: inputs,
                         watchdog: watchdog, log: log, fatal: fatal)
      d.start()
      dispatcher = d
    }

    if group.rank == 0 {
      try lead(group: group, control: control, runner: runner)
    } else {
      try follow(group: group, runner: runner)
    }

    var bytes: [UInt8] = []
    if let dispatcher { bytes = try RecordCodec.encoder.encode(dispatcher.finish()).bytes }
    control.broadcast(bytes: &bytes, root: 0)
    let summary: GridSummary
    do { summary = try RecordCodec.decoder.decode(GridSummary.self, from: Data(bytes)) } catch {
      throw PETLError("grid: rank \(world.rank) received an unreadable summary from rank 0")
    }
    return summary
  }

  /// What a group leader tells rank 0: the id of the cell it finished with its result (if any), and
  /// a signal it saw (if any). Rank 0 knows the cell it handed out; the id confirms it.
  struct Report: Codable {
    var id: String?
    var result: CellResult?
    var signal: Int32?
  }

  /// Rank 0's answer: the next cell, or nil for "no more work".
  struct Assignment: Codable, Sendable {
    var cell: PlannedCell?
  }

  /// A group leader: ask for work, pass it to the group, train, report, until told there is no more.
  /// A `CellFailure` is the cell's own result; any other error leaves (the job ends).
  private static func lead(group: Communicator, control: Communicator,
                           runner: (PlannedCell, Communicator) throws -> CellResult) throws {
    StopSignal.checkStopFile()
    var report = Report(id: nil, result: nil, signal: StopSignal.receivedSignal)
    while true {
      control.send(try RecordCodec.encoder.encode(report).bytes, to: 0, tag: reportTag)
      let answer = control.receive(from: 0, tag: assignTag)
      let assignment: Assignment
      do { assignment = try RecordCodec.decoder.decode(Assignment.self, from: Data(answer.bytes)) } catch {
        throw PETLError("grid: unreadable assignment from rank 0 (\(answer.bytes.count) bytes)")
      }
      var bytes: [UInt8] = assignment.cell == nil ? [] : answer.bytes
      group.broadcast(bytes: &bytes, root: 0)
      guard let cell = assignment.cell else { return }
      let started = Date()
      var result: CellResult
      do { result = try runner(cell, group) } catch let failure as CellFailure {
        result = .failed(reason: failure.reason, wallSeconds: Date().timeIntervalSince(started), ranks: group.size)
      }
      report = Report(id: cell.id, result: result, signal: StopSignal.receivedSignal)
    }
  }

  /// A non-leader rank: train whatever cell the leader broadcasts, until it broadcasts nothing. A
  /// `CellFailure` is decided alike on every rank of the group (from all-reduced values), so the
  /// leader journals it; any other error leaves, and the job ends (the group is out of step).
  private static func follow(group: Communicator, runner: (PlannedCell, Communicator) throws -> CellResult) throws {
    while true {
      var bytes: [UInt8] = []
      group.broadcast(bytes: &bytes, root: 0)
      guard !bytes.isEmpty else { return }
      let assignment: Assignment
      do { assignment = try RecordCodec.decoder.decode(Assignment.self, from: Data(bytes)) } catch {
        throw PETLError("grid: unreadable cell from the group leader (\(bytes.count) bytes)")
      }
      guard let cell = assignment.cell else { return }
      do { _ = try runner(cell, group) } catch is CellFailure {}
    }
  }
}

/// How long rank 0 lets a group work on one cell before it ends the job: `fixedSeconds` when given,
/// else `factor` x the cost model's prediction + `floorSeconds`. Before any cell has finished the
/// prediction is the cost model's prior (`CostModel.priorSecondsPerUnit`), a deliberately slow rate.
public struct Watchdog: Sendable {
  public var fixedSeconds: Double?
  public var factor: Double
  public var floorSeconds: Double

  public init(fixedSeconds: Double? = nil, factor: Double = 5, floorSeconds: Double = 120) {
    self.fixedSeconds = fixedSeconds; self.factor = factor; self.floorSeconds = floorSeconds
  }

  /// The bound for `spec` and how it was set, for the message that names it.
  func bound(_ spec: CellSpec, cost: CostModel) -> (seconds: Double, why: String) {
    if let fixed = fixedSeconds { return (fixed, "--cell-timeout \(Progress.duration(fixed))") }
    let fitted = cost.estimatedSeconds(spec)
    let predicted = fitted ?? cost.priorSeconds(spec)
    let seconds = factor * predicted + floorSeconds
    return (seconds, "\(String(format: "%g", factor)) x \(fitted == nil ? "prior estimate" : "predicted") "
      + "\(Progress.duration(predicted)) + \(Progress.duration(floorSeconds))")
  }
}

extension Data {
  var bytes: [UInt8] { [UInt8](self) }
}

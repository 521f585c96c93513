import Foundation

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
  /// Why the coordinator gave up (e.g. the journal could not be written), if it did.
  public var error: String? = nil

  /// True when the grid stopped with work left that a rerun would do.
  public var resumable: Bool { remaining > 0 && error == nil }
}

/// Runs a grid of cells over the MPI world: rank 0 hands cells out and journals results; the world is
/// cut into groups of `dp` consecutive ranks that each train one cell at a time, data-parallel.
///
/// Rank 0 coordinates from a background thread that polls with sleeps (it costs no core) and trains
/// in group 0 on its main thread, so no rank idles. Cells go out costliest first (`CostModel`) to the
/// next group that asks. A runner error becomes a `failed` record and the grid goes on. SIGUSR1,
/// SIGTERM and SIGINT (on any rank) stop the handing out; running cells finish and are journaled, then
/// every rank returns the same `GridSummary` (`resumable` means: exit with
/// `GridSummary.resumableExitCode` so Slurm can requeue).
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
  @discardableResult
  public static func runGrid(cells: [CellSpec], journal: Journal?, world: Communicator, dp: Int,
                             retryFailed: Bool, cost: CostModel,
                             runner: (CellSpec, Communicator) throws -> CellResult,
                             log: @escaping @Sendable (String) -> Void) throws -> GridSummary {
    guard dp >= 1, world.size % dp == 0 else {
      throw PETLError("--dp \(dp): must be at least 1 and divide the world size \(world.size)")
    }
    if world.rank == 0 && journal == nil { throw PETLError("runGrid: rank 0 needs the journal") }
    let control = try world.duplicate()
    let group = try world.split(color: world.rank / dp, key: world.rank)
    let stop = StopSignal()
    defer { stop.cancel() }

    var dispatcher: Dispatcher? = nil
    if world.rank == 0, let journal {
      let d = Dispatcher(cells: cells, journal: journal, control: control, groups: world.size / dp,
                         dp: dp, retryFailed: retryFailed, cost: cost, stop: stop, log: log)
      d.start()
      dispatcher = d
    }

    if group.rank == 0 {
      try lead(group: group, control: control, stop: stop, runner: runner)
    } else {
      follow(group: group, runner: runner)
    }

    var bytes: [UInt8] = []
    if let dispatcher { bytes = try JSONEncoder().encode(dispatcher.finish()).bytes }
    control.broadcast(bytes: &bytes, root: 0)
    let summary: GridSummary
    do { summary = try JSONDecoder().decode(GridSummary.self, from: Data(bytes)) } catch {
      throw PETLError("grid: rank \(world.rank) received an unreadable summary from rank 0")
    }
    if let error = summary.error { throw PETLError(error) }
    return summary
  }

  /// What a group leader tells rank 0: the cell it finished (if any) and a signal it saw (if any).
  struct Report: Codable {
    var spec: CellSpec?
    var result: CellResult?
    var signal: Int32?
  }

  /// Rank 0's answer: the next cell, or nil for "no more work".
  struct Assignment: Codable {
    var spec: CellSpec?
  }

  /// A group leader: ask for work, pass it to the group, train, report, until told there is no more.
  private static func lead(group: Communicator, control: Communicator, stop: StopSignal,
                           runner: (CellSpec, Communicator) throws -> CellResult) throws {
    var report = Report(spec: nil, result: nil, signal: stop.receivedSignal)
    while true {
      control.send(try JSONEncoder().encode(report).bytes, to: 0, tag: reportTag)
      let answer = control.receive(from: 0, tag: assignTag)
      let assignment: Assignment
      do { assignment = try JSONDecoder().decode(Assignment.self, from: Data(answer.bytes)) } catch {
        throw PETLError("grid: unreadable assignment from rank 0 (\(answer.bytes.count) bytes)")
      }
      var cell: [UInt8] = assignment.spec == nil ? [] : answer.bytes
      group.broadcast(bytes: &cell, root: 0)
      guard let spec = assignment.spec else { return }
      let started = Date()
      var result: CellResult
      do { result = try runner(spec, group) } catch {
        result = .failed(reason: oneLine(error), wallSeconds: Date().timeIntervalSince(started), ranks: group.size)
      }
      report = Report(spec: spec, result: result, signal: stop.receivedSignal)
    }
  }

  /// A non-leader rank: train whatever cell the leader broadcasts, until it broadcasts nothing.
  private static func follow(group: Communicator, runner: (CellSpec, Communicator) throws -> CellResult) {
    while true {
      var cell: [UInt8] = []
      group.broadcast(bytes: &cell, root: 0)
      guard !cell.isEmpty, let assignment = try? JSONDecoder().decode(Assignment.self, from: Data(cell)),
            let spec = assignment.spec else { return }
      // The leader's outcome is the one journaled; a follower's error is the same error or a symptom.
      _ = try? runner(spec, group)
    }
  }

  static func oneLine(_ error: Error) -> String {
    let text = (error as? PETLError)?.message ?? String(describing: error)
    return text.split(whereSeparator: \.isNewline).joined(separator: " ")
  }
}

extension Data {
  var bytes: [UInt8] { [UInt8](self) }
}

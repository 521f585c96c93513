import Foundation
import PETLModel
import PETLTraining
import PETLDistributed
import PETLSupport

/// Rank 0's coordinator thread: answers group leaders' reports with the next cell, journals each
/// finished cell and prints one progress line for it. Polls with sleeps, so it needs no core of its own.
/// It also watches: a group that has not reported its cell within the watchdog's bound, or a journal
/// that cannot be written, ends the job (`fatal`) with a line that names the rank and the cause.
final class Dispatcher: @unchecked Sendable {
  private let journal: Journal
  private let control: Communicator
  private let groups: Int
  private let dp: Int
  /// The host of each world rank.
  private let hosts: [String]
  /// Group leaders whose reports carried a stop request (they saw it themselves).
  private var signalled = Set<Int>()
  private let inputs: [String: CellInputs]
  private let watchdog: Watchdog
  private let log: @Sendable (String) -> Void
  private let fatal: @Sendable (String) -> Never
  private var cost: CostModel
  private typealias Cell = PlannedCell
  private var queue: [Cell]
  private var running: [Int: (cell: Cell, started: Date)] = [:]
  /// Per group leader: the prefix-cache key of its last cell (see `nextIndex`).
  private var lastPrefix: [Int: String?] = [:]
  /// The chosen rate of every parent cell that has a record (nil: failed, collapsed or no choice);
  /// a cell with a parent goes out only once its parent is here (`PlannedCell.parent`).
  private var parentRates: [String: Double?] = [:]
  /// Group leaders waiting for a cell whose parent is still training.
  private var parked: [Int] = []
  private var summary = GridSummary()
  private var total: Int
  private var finished = 0
  private let done = DispatchSemaphore(value: 0)

  init(cells: [PlannedCell], journal: Journal, control: Communicator, groups: Int, dp: Int, hosts: [String],
       retryFailed: Bool, cost: CostModel, inputs: [String: CellInputs], watchdog: Watchdog,
       log: @escaping @Sendable (String) -> Void, fatal: @escaping @Sendable (String) -> Never) {
    self.journal = journal; self.control = control; self.groups = groups; self.dp = dp; self.hosts = hosts
    self.inputs = inputs; self.watchdog = watchdog; self.log = log; self.fatal = fatal
    self.cost = cost
    let done = journal.done(inputs: inputs)
    var seen = Set<String>()
    var todo: [Cell] = []
    var rerun = 0
    for cell in cells where seen.insert(cell.id).inserted {
      summary.planned += 1
      if done.ok.contains(cell.id) { summary.alreadyOK += 1; continue }
      if done.failed.contains(cell.id) && !retryFailed { summary.skippedFailed += 1; continue }
      if done.stale.contains(cell.id) { rerun += 1 }
      todo.append(cell)
    }
    queue = cost.costliestFirst(todo, spec: \.spec)
    total = todo.count
    // Parents done before this run hand over what the journal says they chose; a parent that is
    // neither in the journal nor to run (not planned) hands over nothing: its children search.
    let pending = Set(todo.map(\.id))
    for record in journal.records where !pending.contains(record.specHash) {
      parentRates[record.specHash] = Self.rate(record.result)
    }
    for cell in todo { if let p = cell.parent, !pending.contains(p), parentRates[p] == nil { parentRates[p] = .some(nil) } }
    var line = "grid: \(summary.planned) cells, \(summary.alreadyOK) already ok"
    line += retryFailed ? ", failed ones retried" : ", \(summary.skippedFailed) failed skipped (--retry-failed to rerun)"
    line += "; \(total) to run on \(groups) group(s) of \(dp) rank(s)"
    log(line)
    if rerun > 0 {
      log("grid: \(rerun) cell(s) in the journal were trained on other inputs (\(done.why.sorted().joined(separator: "; "))): "
        + "they run again; report keeps the old results apart")
    }
  }

  func start() {
    // The thread holds the dispatcher (and through it the journal, whose flock it keeps) only while
    // it runs: the reference is dropped BEFORE `finish` is released, so when the grid returns the
    // journal's lifetime is its owner's again (a closure capture would live on until the thread object
    // is torn down, racing a reopen of the same journal).
    let retained = Unmanaged.passRetained(self)
    let thread = Thread {
      let done: DispatchSemaphore
      do {
        let me = retained.takeRetainedValue()
        me.run()
        done = me.done
      }
      done.signal()
    }
    thread.name = "swift-petl coordinator"
    thread.start()
  }

  /// Waits for the thread to end and returns the summary every rank will receive.
  func finish() -> GridSummary {
    done.wait()
    return summary
  }

  private func run() {
    var active = groups
    var announcedStop = false
    var poller = Poller()
    var lastWatch = Date()
    while active > 0 {
      guard let message = control.tryReceive(tag: Coordinator.reportTag) else {
        if Date().timeIntervalSince(lastWatch) >= 0.5 {
          lastWatch = Date()
          StopSignal.checkStopFile()
          watch()
        }
        poller.pause()
        continue
      }
      poller = Poller()
      let report: Coordinator.Report
      do { report = try RecordCodec.decoder.decode(Coordinator.Report.self, from: Data(message.bytes)) } catch {
        fatal("grid: unreadable report from rank \(message.source) (\(message.bytes.count) bytes)")
      }
      let handed = running.removeValue(forKey: message.source)
      if let sig = report.signal { StopSignal.request(sig); signalled.insert(message.source) }
      StopSignal.checkStopFile()
      if let id = report.id, let result = report.result {
        guard let cell = handed?.cell, cell.id == id else {
          fatal("grid: rank \(message.source) reported cell \(id), which rank 0 did not hand it")
        }
        record(cell, result, worker: message.source)
      }

      let signal = StopSignal.receivedSignal
      if signal != nil && !announcedStop && !queue.isEmpty {
        announcedStop = true
        log("grid: \(StopSignal.name(signal!)) received: no new cells; \(running.count) running cell(s) will finish, "
          + "\(queue.count) left for the next run")
      }
      parked.append(message.source)
      // Every waiting leader gets a cell, or "no more work", or waits on for a parent to finish.
      for source in parked {
        var assignment = Coordinator.Assignment(cell: nil)
        if signal == nil && !queue.isEmpty {
          guard let index = nextIndex(for: source) else { continue }
          var cell = queue.remove(at: index)
          if let p = cell.parent { cell.inheritedRate = parentRates[p] ?? nil }
          running[source] = (cell, Date())
          lastPrefix[source] = prefixKey(cell.spec)
          assignment.cell = cell
        } else {
          active -= 1
        }
        parked.removeAll { $0 == source }
        let bytes = (try? RecordCodec.encoder.encode(assignment)).map { [UInt8]($0) } ?? []
        control.send(bytes, to: source, tag: Coordinator.assignTag)
      }
    }
    summary.remaining = queue.count
    summary.stoppedBy = StopSignal.receivedSignal
    if let sig = summary.stoppedBy, !signalled.isEmpty {
      // Which leaders saw the request themselves: a signal forwarded by the launcher reaches every
      // rank, on every node; a stop file only rank 0.
      let leaders = signalled.sorted()
      log("grid: \(StopSignal.name(sig)) seen by group leader(s) \(leaders.map(String.init).joined(separator: ", ")) of "
        + "\(groups) on \(Set(leaders.map { hosts[$0] }).sorted().joined(separator: ", "))")
    }
    log("grid: \(summary.ok) ok, \(summary.failed) failed, \(summary.remaining) left"
      + (summary.resumable ? " (rerun to resume)" : ""))
  }

  /// Ends the job if a group has been on its cell for longer than the watchdog allows: a hung or
  /// lost rank would otherwise hold the whole allocation until its time limit.
  private func watch() {
    let now = Date()
    for (leader, run) in running.sorted(by: { $0.key < $1.key }) {
      let elapsed = now.timeIntervalSince(run.started)
      let bound = watchdog.bound(run.cell.spec, cost: cost)
      guard elapsed > bound.seconds else { continue }
      let ranks = (dp > 1 ? "ranks \(leader)-\(leader + dp - 1) (leader \(leader))" : "rank \(leader)") + " on \(hostList(leader))"
      fatal("grid: watchdog: \(ranks) has not reported cell \(run.cell.spec.label) [\(run.cell.id)] after "
        + "\(Progress.duration(elapsed)) (bound \(Progress.duration(bound.seconds)) = \(bound.why)); ending the job. "
        + "Finished cells are in the journal; rerun to resume")
    }
  }

  /// The distinct hosts of the group led by `leader`, e.g. `n2` or `n1, n2`.
  private func hostList(_ leader: Int) -> String {
    var seen: [String] = []
    for h in hosts[leader..<min(leader + dp, hosts.count)] where !seen.contains(h) { seen.append(h) }
    return seen.joined(separator: ", ")
  }

  /// The group's frozen-prefix cache is reusable by another cell with the same key.
  private func prefixKey(_ spec: CellSpec) -> String? {
    guard spec.options.prefixCache, let layer = cost.reach(spec).frozenPrefix else { return nil }
    return StudyContext.dataKey(task: spec.task, spec.options) + "|\(layer)"
  }

  /// Costliest first among the cells whose parent has a record, except that a group whose last cell
  /// left a frozen-prefix cache gets a cell that can reuse it, when one costs at least 80% of the
  /// costliest such cell. nil: every queued cell waits for a parent still training.
  private func nextIndex(for source: Int) -> Int? {
    let ready = queue.indices.filter { i in queue[i].parent.map { parentRates[$0] != nil } ?? true }
    guard let first = ready.first else { return nil }
    guard let key = lastPrefix[source] ?? nil else { return first }
    let floor = 0.8 * cost.units(queue[first].spec)
    for i in ready {
      if cost.units(queue[i].spec) < floor { break }
      if prefixKey(queue[i].spec) == key { return i }
    }
    return first
  }

  /// What a finished cell hands its children: its chosen rate, unless it failed or collapsed.
  static func rate(_ result: CellResult) -> Double? {
    guard result.status == .ok, !result.collapsed else { return nil }
    return result.selection?.chosen
  }

  private func record(_ cell: Cell, _ result: CellResult, worker: Int) {
    let spec = cell.spec
    do {
      try journal.append(JournalRecord(spec: spec, id: cell.id, result: result, worker: worker,
                                       hosts: Array(hosts[worker..<min(worker + dp, hosts.count)]), inputs: inputs[spec.task]))
    } catch {
      fatal("grid: \(oneLine(error)) (cell \(spec.label) from rank \(worker) on \(hosts[worker]) is lost; earlier cells are in the journal)")
    }
    finished += 1
    parentRates[cell.id] = Self.rate(result)
    if result.status == .ok { summary.ok += 1 } else { summary.failed += 1 }
    cost.observe(spec, seconds: result.wallSeconds)
    queue = cost.costliestFirst(queue, spec: \.spec)  // the fitted rates may reorder what is left
    log(progressLine(spec, result))
  }

  private func progressLine(_ spec: CellSpec, _ result: CellResult) -> String {
    let outcome: String
    switch result.status {
    case .ok:
      outcome = result.dev.keys.sorted().map { "\($0)=\(String(format: "%.4f", result.dev[$0] ?? .nan))" }.joined(separator: " ")
        + (result.selection.map { " (lr \(String(format: "%.0e", $0.chosen)) chosen)" } ?? "")
    case .failed: outcome = "FAILED (\(result.reason ?? "no reason given"))"
    }
    let left = (queue + running.values.map(\.cell)).map(\.spec)
    let eta = left.isEmpty ? "done" : cost.estimatedSeconds(left, workers: groups).map { "ETA " + Progress.duration($0) } ?? "ETA ?"
    return "[\(finished)/\(total)] \(spec.label)  \(outcome)  \(String(format: "%.1f", result.wallSeconds))s  \(eta)"
  }
}

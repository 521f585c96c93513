import Foundation

/// Rank 0's coordinator thread: answers group leaders' reports with the next cell, journals each
/// finished cell and prints one progress line for it. Polls with sleeps, so it needs no core of its own.
final class Dispatcher: @unchecked Sendable {
  private let journal: Journal
  private let control: Communicator
  private let groups: Int
  private let stop: StopSignal
  private let log: @Sendable (String) -> Void
  private var cost: CostModel
  private var queue: [CellSpec]
  private var running: [Int: CellSpec] = [:]
  /// Per group leader: the prefix-cache key of its last cell (see `nextIndex`).
  private var lastPrefix: [Int: String?] = [:]
  private var summary = GridSummary()
  private var total: Int
  private var finished = 0
  private let done = DispatchSemaphore(value: 0)

  init(cells: [CellSpec], journal: Journal, control: Communicator, groups: Int, dp: Int,
       retryFailed: Bool, cost: CostModel, stop: StopSignal, log: @escaping @Sendable (String) -> Void) {
    self.journal = journal; self.control = control; self.groups = groups; self.stop = stop; self.log = log
    self.cost = cost
    let ok = journal.okHashes, failed = journal.failedHashes
    var seen = Set<String>()
    var todo: [CellSpec] = []
    for spec in cells where seen.insert(spec.hash).inserted {
      summary.planned += 1
      if ok.contains(spec.hash) { summary.alreadyOK += 1; continue }
      if failed.contains(spec.hash) && !retryFailed { summary.skippedFailed += 1; continue }
      todo.append(spec)
    }
    queue = cost.costliestFirst(todo)
    total = todo.count
    var line = "grid: \(summary.planned) cells, \(summary.alreadyOK) already ok"
    line += retryFailed ? ", failed ones retried" : ", \(summary.skippedFailed) failed skipped (--retry-failed to rerun)"
    line += "; \(total) to run on \(groups) group(s) of \(dp) rank(s)"
    log(line)
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
    while active > 0 {
      guard let message = control.tryReceive(tag: Coordinator.reportTag) else { poller.pause(); continue }
      poller = Poller()
      let report: Coordinator.Report
      do { report = try JSONDecoder().decode(Coordinator.Report.self, from: Data(message.bytes)) } catch {
        summary.error = summary.error ?? "grid: unreadable report from rank \(message.source)"
        report = Coordinator.Report()
      }
      running[message.source] = nil
      if let sig = report.signal { stop.request(sig) }
      if let spec = report.spec, let result = report.result { record(spec, result, worker: message.source) }

      let stopping = stop.receivedSignal != nil || summary.error != nil
      if stopping && !announcedStop && !queue.isEmpty {
        announcedStop = true
        let why = stop.receivedSignal.map { StopSignal.name($0) + " received" } ?? "error"
        log("grid: \(why): no new cells; \(running.count) running cell(s) will finish, "
          + "\(queue.count) left for the next run")
      }
      var assignment = Coordinator.Assignment(spec: nil)
      if !stopping && !queue.isEmpty {
        let spec = queue.remove(at: nextIndex(for: message.source))
        running[message.source] = spec
        lastPrefix[message.source] = prefixKey(spec)
        assignment.spec = spec
      } else {
        active -= 1
      }
      let bytes = (try? JSONEncoder().encode(assignment)).map { [UInt8]($0) } ?? []
      control.send(bytes, to: message.source, tag: Coordinator.assignTag)
    }
    summary.remaining = queue.count
    summary.stoppedBy = stop.receivedSignal
    log("grid: \(summary.ok) ok, \(summary.failed) failed, \(summary.remaining) left"
      + (summary.resumable ? " (rerun to resume)" : ""))
  }

  /// The group's frozen-prefix cache is reusable by another cell with the same key.
  private func prefixKey(_ spec: CellSpec) -> String? {
    guard spec.options.prefixCache else { return nil }
    return StudyContext.dataKey(task: spec.task, spec.options) + "|\(cost.lowestTrainableLayer(spec))"
  }

  /// Costliest first, except that a group whose last cell left a frozen-prefix cache gets a cell
  /// that can reuse it, when one costs at least 80% of the costliest remaining cell.
  private func nextIndex(for source: Int) -> Int {
    guard let key = lastPrefix[source] ?? nil, let top = queue.first else { return 0 }
    let floor = 0.8 * cost.units(top)
    for (i, spec) in queue.enumerated() {
      if cost.units(spec) < floor { break }
      if prefixKey(spec) == key { return i }
    }
    return 0
  }

  private func record(_ spec: CellSpec, _ result: CellResult, worker: Int) {
    do {
      try journal.append(JournalRecord(spec: spec, result: result, worker: worker))
    } catch {
      summary.error = summary.error ?? Coordinator.oneLine(error)
      log("grid: \(Coordinator.oneLine(error)); stopping")
      return
    }
    finished += 1
    if result.status == .ok { summary.ok += 1 } else { summary.failed += 1 }
    cost.observe(spec, seconds: result.wallSeconds)
    queue = cost.costliestFirst(queue)  // the fitted rates may reorder what is left
    log(progressLine(spec, result))
  }

  private func progressLine(_ spec: CellSpec, _ result: CellResult) -> String {
    let outcome: String
    switch result.status {
    case .ok: outcome = result.dev.keys.sorted().map { "\($0)=\(String(format: "%.4f", result.dev[$0] ?? .nan))" }.joined(separator: " ")
    case .failed: outcome = "FAILED (\(result.reason ?? "no reason given"))"
    }
    let left = queue + Array(running.values)
    let eta = left.isEmpty ? "done" : cost.estimatedSeconds(left, workers: groups).map { "ETA " + Self.duration($0) } ?? "ETA ?"
    return "[\(finished)/\(total)] \(spec.label)  \(outcome)  \(String(format: "%.1f", result.wallSeconds))s  \(eta)"
  }

  static func duration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m" }
    return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
  }
}

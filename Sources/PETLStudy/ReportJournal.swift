import Foundation
import PETLData
import PETLTraining
import PETLSupport

/// What the report reads of a journal line (the writer's `JournalRecord`, in CellResult.swift).
extension JournalRecord {
  public var status: CellResult.Status { result.status }
  public var reason: String? { result.reason }
  public var trainableParameters: Int? { result.trainableParameters }
  public var totalParameters: Int? { result.totalParameters }
  public var wallSeconds: Double? { result.wallSeconds }

  /// The metric this record's cell is ranked by, as named in `dev`: the one the record names, else
  /// (a record written before records named it) the built-in task's. nil for a record of a task that
  /// is not built in and names none: `report` never sees a user task's `task.json`, and guessing
  /// `accuracy` could rank an F1 task by the wrong number.
  public var primaryMetric: String? {
    result.primaryMetric ?? (try? TaskDescriptor.named(spec.task).primaryMetric)
  }

  /// The primary metric of an `ok` record.
  public var score: Double? { primaryMetric.flatMap { result.dev[$0] } }

  /// True when `spec_hash` is not the hash of `spec`: the record is set aside, not trusted.
  public var hashMismatch: Bool { specHash != spec.hash }
}

/// Reads and merges journals (JSON lines). Journals are read in the order given and lines in file
/// order. A record whose `spec_hash` is not the hash of its spec (edited by hand, or written by
/// another tool) cannot be told apart from another cell's, so it is set aside (`hashMismatch`).
/// Per task, the inputs of its LAST record (the newest run) are current: records of that task
/// with other inputs (other data, weights or engine numerics; see `CellInputs`) are set aside, never
/// pooled with the current ones. Among the rest, a spec hash seen again replaces the earlier record
/// unless that would replace an `ok` with a `failed` (a retried cell that succeeded once stays so).
public enum StudyJournal {
  public static func load(_ urls: [URL]) throws -> (records: [JournalRecord], setAside: [JournalRecord]) {
    var all: [JournalRecord] = []
    for url in urls { all += try records(in: url) }
    var current: [String: CellInputs?] = [:]
    for record in all { current[record.spec.task] = .some(record.inputs) }
    var order: [String] = []
    var byHash: [String: JournalRecord] = [:]
    var setAside: [JournalRecord] = []
    for record in all {
      guard !record.hashMismatch else { setAside.append(record); continue }
      guard record.inputs == current[record.spec.task]! else { setAside.append(record); continue }
      if let previous = byHash[record.specHash] {
        if record.status == .ok || previous.status == .failed { byHash[record.specHash] = record }
      } else {
        order.append(record.specHash)
        byHash[record.specHash] = record
      }
    }
    return (order.map { byHash[$0]! }, setAside)
  }

  /// The records of one journal, each checked: an `ok` record must carry its task's primary metric.
  static func records(in url: URL) throws -> [JournalRecord] {
    let path = url.path
    var out: [JournalRecord] = []
    for line in JournalLines(try JournalLines.read(url)).lines {
      let record: JournalRecord
      switch line.record {
      case .success(let r): record = r
      case .failure(let error): throw PETLError("\(path):\(line.number): not a journal record (\(oneLine(error)))")
      }
      if record.status == .ok {
        guard let metric = record.primaryMetric else {
          throw PETLError("\(path):\(line.number): ok record for \(record.spec.label) names no primary metric, "
                            + "and \(record.spec.task) is not a built-in task")
        }
        guard let score = record.score, score.isFinite else {
          throw PETLError("\(path):\(line.number): ok record for \(record.spec.label) has no finite dev '\(shown(metric))'")
        }
      }
      out.append(record)
    }
    return out
  }
}

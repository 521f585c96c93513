import Foundation
import PETLTraining

/// One line of the results journal: the cell, its identity, its result (fields at top level), who
/// trained it and when it finished.
public struct JournalRecord: Codable, Hashable, Sendable {
  public var spec: CellSpec
  public var specHash: String
  public var result: CellResult
  /// World rank of the leader of the group that trained the cell.
  public var worker: Int
  /// The host of each rank of that group, in group rank order (the leader's first): on a cluster,
  /// where to look for a node's logs or a slow node. Nil in journals written before hosts were recorded.
  public var hosts: [String]?
  /// ISO 8601 UTC, e.g. `2026-11-29T03:12:45Z`.
  public var finishedAt: String
  /// Fingerprints of what the cell read; nil in journals written before they were recorded.
  public var inputs: CellInputs?

  /// `id`: the spec's hash when the caller has it already (nil: computed here).
  public init(spec: CellSpec, id: String? = nil, result: CellResult, worker: Int, hosts: [String]? = nil,
              finishedAt: Date = Date(), inputs: CellInputs? = nil) {
    self.spec = spec; self.specHash = id ?? spec.hash; self.result = result; self.worker = worker
    self.hosts = hosts; self.finishedAt = Self.timestamp(finishedAt); self.inputs = inputs
  }

  static func timestamp(_ date: Date) -> String {
    let f = ISO8601DateFormatter()
    f.timeZone = TimeZone(identifier: "UTC")
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: date)
  }

  /// The fields besides the result; a line holds them at the top level beside the result's own.
  private struct Header: Codable {
    var spec: CellSpec
    var specHash: String
    var worker: Int
    var hosts: [String]?
    var finishedAt: String
    var inputs: CellInputs?

    enum CodingKeys: String, CodingKey {
      case spec, specHash = "spec_hash", worker, hosts, finishedAt = "finished_at", inputs
    }
  }

  public init(from decoder: Decoder) throws {
    let h = try Header(from: decoder)
    spec = h.spec; specHash = h.specHash; worker = h.worker; hosts = h.hosts; finishedAt = h.finishedAt; inputs = h.inputs
    result = try CellResult(from: decoder)
  }

  public func encode(to encoder: Encoder) throws {
    try Header(spec: spec, specHash: specHash, worker: worker, hosts: hosts, finishedAt: finishedAt, inputs: inputs)
      .encode(to: encoder)
    try result.encode(to: encoder)
  }
}

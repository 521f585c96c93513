import Foundation
import PETLSupport

/// Checks at start-up that every rank sees the same results folder.
///
/// On a cluster the results folder must sit on a file system every node mounts: rank 0 writes the
/// journal there and group leaders on other nodes write their adapters there. A folder that is
/// node-local (a path under /tmp or a node's scratch disk) would otherwise be found out at the end,
/// with adapters scattered over the nodes' disks. Rank 0 writes a token file with a fresh random
/// value into the folder; every rank reads it back; the verdicts are gathered, and on a mismatch rank
/// 0 throws one error that names the ranks and hosts that do not see it, while the other ranks wait
/// for the job to be ended (one line for the whole job, not one per rank).
public enum SharedFolderCheck {
  /// The token's file name inside the checked folder starts with this (a fresh name each run, so
  /// no node's cached lookup of an earlier token can answer; removed again after the check).
  public static let tokenPrefix = ".swift-petl-shared-check-"

  /// Collective over `world`. Creates `folder` on rank 0 (with its parents) if needed. Returns on every
  /// rank when every rank read rank 0's token; otherwise throws on rank 0 and never returns elsewhere.
  public static func run(folder: URL, world: Communicator, what: String = "the results folder") throws {
    guard world.size > 1 else { return }
    var payload: [UInt8] = []
    var written: String? = nil
    if world.rank == 0 {
      var random = SystemRandomNumberGenerator()
      let name = tokenPrefix + String(random.next(), radix: 16)
      let value = "\(String(random.next(), radix: 16)) \(world.processorName) \(getpid())"
      do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(value.utf8).write(to: folder.appendingPathComponent(name))
        written = name
      } catch {
        // Every rank must still reach the gather below: the failure is decided together.
        written = nil
      }
      payload = written == nil ? [] : Array("\(name)\n\(value)".utf8)
    }
    world.broadcast(bytes: &payload, root: 0)
    let parts = String(decoding: payload, as: UTF8.self).split(separator: "\n", maxSplits: 1).map(String.init)
    var verdict = "missing"
    if parts.count == 2 {
      let token = folder.appendingPathComponent(parts[0])
      // A network file system may show a file created on another node a moment late: a few tries.
      for attempt in 0..<5 {
        if attempt > 0 { usleep(200_000) }
        guard let seen = try? String(contentsOf: token, encoding: .utf8) else { continue }
        verdict = seen == parts[1] ? "ok" : "different"
        if verdict == "ok" { break }
      }
    }
    let verdicts = world.allgather(bytes: Array(verdict.utf8)).map { String(decoding: $0, as: UTF8.self) }
    let hosts = world.hostNames()
    world.barrier()   // every rank has read the token before rank 0 removes it
    if world.rank == 0, let written { try? FileManager.default.removeItem(at: folder.appendingPathComponent(written)) }
    if verdicts.allSatisfy({ $0 == "ok" }) { return }
    guard world.rank == 0 else {
      // Rank 0 reports and ends the job (MPI_Abort); a polled barrier it never joins waits for that
      // without a core.
      world.barrier()
      throw PETLError("\(what) \(folder.path) is not shared (rank 0 ends the job)")
    }
    if written == nil {
      throw PETLError("\(folder.path): cannot write \(what) on rank 0 (\(hosts[0]))")
    }
    let bad = verdicts.indices.filter { verdicts[$0] != "ok" }
    var byHost: [String: [Int]] = [:]
    for r in bad { byHost[hosts[r], default: []].append(r) }
    let who = byHost.keys.sorted().map { host in
      "rank(s) \(byHost[host]!.map(String.init).joined(separator: ", ")) on \(host)"
    }.joined(separator: "; ")
    throw PETLError("\(what) \(folder.path) is not shared between the nodes: \(who) do not see the file rank 0 "
      + "wrote there on \(hosts[0]); put it on a file system every node mounts (docs/cluster.md)")
  }
}

import Foundation

/// The launch diagnostic behind `swift-petl mpi-check`: every rank takes part in a few exchanges whose
/// results are known in advance, so a wrong world (ranks that do not see each other, a `--dp` that does
/// not fit, a broken transport) shows up as a named mismatch instead of a wrong grid.
public enum MPICheck {
  /// Runs every check; `report` gets rank 0's lines, `problem` each mismatch (on the rank that saw it).
  /// Returns the number of mismatches over all ranks (the same on every rank).
  public static func run(world: Communicator, dp: Int, report: (String) -> Void,
                         problem: (String) -> Void) -> Int {
    var failures = 0
    func fail(_ text: String) { failures += 1; problem("rank \(world.rank): \(text)") }

    // Hosts and point-to-point towards rank 0.
    let me = "\(world.processorName) pid \(getpid())"
    if world.rank == 0 {
      report("world: \(world.size) rank(s)")
      var hosts: [Int: String] = [0: me]
      for _ in 1..<max(world.size, 1) {
        let m = world.receive(tag: 1)
        hosts[m.source] = String(decoding: m.bytes, as: UTF8.self)
      }
      for r in 0..<world.size { report("  rank \(r): \(hosts[r] ?? "(no answer)")") }
      let distinct = Set(hosts.values.map { $0.split(separator: " ").first.map(String.init) ?? "" })
      report("hosts: \(distinct.sorted().joined(separator: ", "))")
    } else {
      world.send(Array(me.utf8), to: 0, tag: 1)
    }

    // Float all-reduce: element i of rank r is r + 1 + i % 7, so a wrong order or a lost chunk shows.
    let n = 2_500
    var values = (0..<n).map { Float(world.rank + 1 + $0 % 7) }
    let size = world.size
    let base = size * (size + 1) / 2
    values.withUnsafeMutableBufferPointer { world.allreduceSum($0.baseAddress!, count: n, chunkElements: 1_000) }
    if let i = (0..<n).first(where: { values[$0] != Float(base + size * ($0 % 7)) }) {
      fail("float all-reduce (3 chunks): element \(i) is \(values[i]), expected \(base + size * (i % 7))")
    }
    let sum = world.allreduceSum(Double(world.rank))
    if sum != Double(size * (size - 1) / 2) { fail("double all-reduce: \(sum), expected \(size * (size - 1) / 2)") }

    // Ring: each rank sends its rank to the next and must hear from the previous one.
    world.send(Array("\(world.rank)".utf8), to: (world.rank + 1) % size, tag: 2)
    let previous = (world.rank - 1 + size) % size
    let heard = world.receive(from: previous, tag: 2)
    if String(decoding: heard.bytes, as: UTF8.self) != "\(previous)" {
      fail("ring: rank \(previous) sent '\(String(decoding: heard.bytes, as: UTF8.self))'")
    }

    // All-gather of different lengths (host names, verdicts): rank r sends r + 1 bytes of value r.
    let gathered = world.allgather(bytes: [UInt8](repeating: UInt8(world.rank % 256), count: world.rank + 1))
    let expectedGather = (0..<size).map { [UInt8](repeating: UInt8($0 % 256), count: $0 + 1) }
    if gathered != expectedGather {
      fail("all-gather: got lengths \(gathered.map(\.count)), expected \(expectedGather.map(\.count))")
    }

    // Data-parallel groups of `dp` consecutive ranks.
    if dp < 1 || size % dp != 0 {
      fail("--dp \(dp) does not divide the world size \(size)")
    } else if let group = try? world.split(color: world.rank / dp, key: world.rank) {
      let leader = world.rank / dp * dp
      if group.size != dp || group.rank != world.rank - leader {
        fail("--dp \(dp): in a group of \(group.size) as rank \(group.rank), expected \(dp) and \(world.rank - leader)")
      }
      let groupSum = group.allreduceSum(Double(world.rank))
      let expected = (leader..<(leader + dp)).reduce(0, +)
      if groupSum != Double(expected) { fail("--dp \(dp): group all-reduce \(groupSum), expected \(expected)") }
      var message: [UInt8] = group.rank == 0 ? Array("group of \(leader)".utf8) : []
      group.broadcast(bytes: &message, root: 0)
      if String(decoding: message, as: UTF8.self) != "group of \(leader)" { fail("--dp \(dp): group broadcast garbled") }
      if world.rank == 0 { report("dp: \(size / dp) group(s) of \(dp) rank(s)") }
    } else {
      fail("--dp \(dp): MPI_Comm_split failed")
    }

    world.barrier()
    let total = Int(world.allreduceSum(Double(failures)))
    if world.rank == 0 {
      report(total == 0 ? "mpi-check: OK (\(size) rank(s), dp \(dp))" : "mpi-check: FAILED, \(total) mismatch(es)")
    }
    return total
  }
}

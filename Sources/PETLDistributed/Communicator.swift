import CMPI
import Foundation
import PETLTraining
import PETLSupport

/// A Swift handle on an MPI communicator: the world, or a group made by `split`.
///
/// MPI's default error handler makes every communication error fatal (the job is aborted), so the
/// data-path calls here do not throw: they either succeed or the launcher reports the abort. Calls
/// that take user input (`world()`'s launch check, `split`) throw `PETLError`.
///
/// Waiting calls that can last long (`barrier`, `broadcast`, `receive`, `send`) poll non-blocking MPI
/// operations with short sleeps instead of Open MPI's busy-spinning blocking calls, so a waiting rank
/// leaves its core to the ranks that train. `allreduceSum` stays blocking: a group's ranks reach it
/// together, where spinning is the fastest way through.
public final class Communicator: @unchecked Sendable {
  let handle: MPI_Comm
  /// This process's rank in the communicator, 0..<size.
  public let rank: Int
  public let size: Int

  private init(handle: MPI_Comm) {
    self.handle = handle
    var r: Int32 = 0, s: Int32 = 0
    MPI_Comm_rank(handle, &r)
    MPI_Comm_size(handle, &s)
    rank = Int(r); size = Int(s)
  }

  /// The world communicator. Initialises MPI on first use (`MPI_THREAD_MULTIPLE`; a singleton of size 1
  /// without mpirun) and checks that the world matches the launcher's idea of it (see `LaunchCheck`).
  public static func world() throws -> Communicator {
    try MPIRuntime.start()
    return Communicator(handle: cmpi_comm_world())
  }

  /// The world's size while MPI runs, nil before start-up or after finalize.
  public static var runningWorldSize: Int? {
    guard MPIRuntime.isRunning else { return nil }
    var n: Int32 = 0
    MPI_Comm_size(cmpi_comm_world(), &n)
    return Int(n)
  }

  /// Finalizes MPI. Every exit path of a process started by mpirun must call it once all
  /// communication is over; calling it again, or without MPI started, does nothing.
  public static func finalize() { MPIRuntime.finalize() }

  /// Ends the whole job because this rank cannot go on: prints `Error: rank R of N on HOST: <message>`
  /// (one line; the host, because on a cluster the rank alone does not say which node to look at;
  /// `Error: <message>` when the job has one rank) to stderr, flushes stdout, then `MPI_Abort`s
  /// the world, which ends every rank within seconds (docs/cluster.md; FailureTests). Returning through
  /// `MPI_Finalize` instead would hang: it is a job-wide fence the other ranks never reach. Without MPI
  /// running (an error before start-up) the process just exits with `code`; mpirun then ends the job.
  public static func failJob(_ message: String, code: Int32 = 1) -> Never {
    let env = ProcessInfo.processInfo.environment
    var rank = Int(env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"] ?? "") ?? 0
    var size = Int(env["OMPI_COMM_WORLD_SIZE"] ?? "") ?? 1
    let running = MPIRuntime.isRunning
    if running {
      var r: Int32 = 0, n: Int32 = 0
      MPI_Comm_rank(cmpi_comm_world(), &r)
      MPI_Comm_size(cmpi_comm_world(), &n)
      rank = Int(r); size = Int(n)
    }
    let text = message.split(whereSeparator: \.isNewline).joined(separator: " ")
    var host = [CChar](repeating: 0, count: 256)
    gethostname(&host, host.count - 1)
    let line = size > 1 ? "Error: rank \(rank) of \(size) on \(String(cString: host)): \(text)\n" : "Error: \(text)\n"
    fflush(stdout)
    FileHandle.standardError.write(Data(line.utf8))
    if running && size > 1 { MPI_Abort(cmpi_comm_world(), code) }
    // One rank: no peer waits, but another thread (the grid's coordinator) may be inside MPI, and
    // MPI_Finalize under it crashes; leave without finalizing (a singleton needs no launcher's consent).
    _exit(code)
  }

  /// The host this rank runs on (`MPI_Get_processor_name`).
  public var processorName: String {
    var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
    var length: Int32 = 0
    MPI_Get_processor_name(&buffer, &length)
    return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// `MPI_Comm_split`: ranks with the same `color` form one new communicator, ordered by `key`
  /// (ties by rank here). Collective over this communicator.
  public func split(color: Int, key: Int) throws -> Communicator {
    guard color >= 0, color <= Int(Int32.max) else {
      throw PETLError("split: color must be in 0...\(Int32.max), got \(color)")
    }
    var out: MPI_Comm? = cmpi_comm_null()
    MPI_Comm_split(handle, Int32(color), Int32(clamping: key), &out)
    guard let out else { throw PETLError("MPI_Comm_split returned no communicator") }
    return Communicator(handle: out)
  }

  /// A new communicator with the same ranks (`MPI_Comm_dup`): keeps control messages apart from any
  /// other traffic on this one. Collective.
  public func duplicate() throws -> Communicator {
    var out: MPI_Comm? = cmpi_comm_null()
    MPI_Comm_dup(handle, &out)
    guard let out else { throw PETLError("MPI_Comm_dup returned no communicator") }
    return Communicator(handle: out)
  }

  /// Waits until every rank has reached the barrier (polled `MPI_Ibarrier`).
  public func barrier() {
    var request: MPI_Request? = cmpi_request_null()
    MPI_Ibarrier(handle, &request)
    wait(&request)
  }

  /// Sends `root`'s bytes to every rank; on the others `bytes` is replaced (any length). Two polled
  /// `MPI_Ibcast`s: the length, then the payload.
  public func broadcast(bytes: inout [UInt8], root: Int) {
    var count = Int64(bytes.count)
    var request: MPI_Request? = cmpi_request_null()
    MPI_Ibcast(&count, 1, cmpi_int64(), Int32(root), handle, &request)
    wait(&request)
    if rank != root { bytes = [UInt8](repeating: 0, count: Int(count)) }
    guard count > 0 else { return }
    bytes.withUnsafeMutableBytes { raw in
      MPI_Ibcast(raw.baseAddress, Int32(count), cmpi_byte(), Int32(root), handle, &request)
      wait(&request)
    }
  }

  /// Every rank's bytes, in rank order, on every rank (any lengths, small messages: host names,
  /// verdicts). Polled `MPI_Iallgather` of the lengths, then `MPI_Iallgatherv`.
  public func allgather(bytes: [UInt8]) -> [[UInt8]] {
    var mine = Int64(bytes.count)
    var counts = [Int64](repeating: 0, count: size)
    var request: MPI_Request? = cmpi_request_null()
    counts.withUnsafeMutableBufferPointer { out in
      MPI_Iallgather(&mine, 1, cmpi_int64(), out.baseAddress, 1, cmpi_int64(), handle, &request)
      wait(&request)
    }
    let lengths = counts.map { Int32(clamping: $0) }
    var offsets = [Int32](repeating: 0, count: size)
    for r in 1..<max(size, 1) { offsets[r] = offsets[r - 1] + lengths[r - 1] }
    var all = [UInt8](repeating: 0, count: Int(lengths.reduce(0, +)))
    bytes.withUnsafeBytes { send in
      all.withUnsafeMutableBytes { out in
        MPI_Iallgatherv(send.baseAddress, Int32(bytes.count), cmpi_byte(), out.baseAddress, lengths, offsets,
                        cmpi_byte(), handle, &request)
        wait(&request)
      }
    }
    return (0..<size).map { r in Array(all[Int(offsets[r])..<Int(offsets[r] + lengths[r])]) }
  }

  /// Every rank's host name (`processorName`), in rank order, on every rank. Collective.
  public func hostNames() -> [String] {
    allgather(bytes: Array(processorName.utf8)).map { String(decoding: $0, as: UTF8.self) }
  }

  /// Largest single `MPI_Allreduce`: 4 Mi floats (16 MiB). Above 32 MiB Open MPI's temporary buffer
  /// is a fresh `mmap` on every call and page-faults, which costs more than the extra calls.
  public static let allreduceChunkElements = 4 * 1024 * 1024

  /// In-place sum over all ranks of `count` floats at `p`, in chunks of at most
  /// `allreduceChunkElements`.
  public func allreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) {
    allreduceSum(p, count: count, chunkElements: Self.allreduceChunkElements)
  }

  func allreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int, chunkElements: Int) {
    var offset = 0
    while offset < count {
      let n = min(chunkElements, count - offset)
      MPI_Allreduce(cmpi_in_place(), p + offset, Int32(n), cmpi_float(), cmpi_op_sum(), handle)
      offset += n
    }
  }

  /// Sum of one double over all ranks (losses, metric counts, timings).
  public func allreduceSum(_ x: Double) -> Double {
    var value = x
    MPI_Allreduce(cmpi_in_place(), &value, 1, cmpi_double(), cmpi_op_sum(), handle)
    return value
  }

  /// Sends `bytes` to rank `to` with `tag` (polled `MPI_Isend`: returns once the buffer may be reused).
  public func send(_ bytes: [UInt8], to destination: Int, tag: Int) {
    var request: MPI_Request? = cmpi_request_null()
    bytes.withUnsafeBytes { raw in
      MPI_Isend(raw.baseAddress, Int32(raw.count), cmpi_byte(), Int32(destination), Int32(tag),
                handle, &request)
      wait(&request)
    }
  }

  /// A message received by `receive` or `tryReceive`.
  public struct Message: Sendable {
    public let bytes: [UInt8]
    public let source: Int
  }

  /// Receives one message with `tag` from `source` (nil: any rank), polling until one arrives.
  public func receive(from source: Int? = nil, tag: Int) -> Message {
    var poller = Poller()
    while true {
      if let message = tryReceive(from: source, tag: tag) { return message }
      poller.pause()
    }
  }

  /// Receives one message with `tag` from `source` (nil: any rank) if one is waiting, else returns nil.
  /// Uses matched probes (`MPI_Improbe` + `MPI_Mrecv`), so two threads probing the same communicator
  /// can never take each other's message.
  public func tryReceive(from source: Int? = nil, tag: Int) -> Message? {
    var flag: Int32 = 0
    var message: MPI_Message? = cmpi_message_null()
    var status = MPI_Status()
    MPI_Improbe(Int32(source ?? Int(MPI_ANY_SOURCE)), Int32(tag), handle, &flag, &message, &status)
    guard flag != 0 else { return nil }
    var count: Int32 = 0
    MPI_Get_count(&status, cmpi_byte(), &count)
    var bytes = [UInt8](repeating: 0, count: Int(count))
    bytes.withUnsafeMutableBytes { raw in
      _ = MPI_Mrecv(raw.baseAddress, count, cmpi_byte(), &message, cmpi_status_ignore())
    }
    return Message(bytes: bytes, source: Int(status.MPI_SOURCE))
  }

  private func wait(_ request: inout MPI_Request?) {
    var flag: Int32 = 0
    var poller = Poller()
    while true {
      MPI_Test(&request, &flag, cmpi_status_ignore())
      if flag != 0 { return }
      poller.pause()
    }
  }

  deinit {
    guard handle != cmpi_comm_world(), MPIRuntime.isRunning else { return }
    var h: MPI_Comm? = handle
    MPI_Comm_free(&h)
  }
}

extension Communicator: Collective {}

import ArgumentParser
import Foundation
import PETLModel
import PETLDistributed
import PETLStudy

/// `swift-petl comm-bench`: times the gradient all-reduce (`Communicator.allreduceSum`, the call a
/// data-parallel step makes) for the study's trainable sets of the given model and of BERT-base,
/// over whatever transport the launch gives it (shared memory on one node, TCP between nodes).
struct CommBenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "comm-bench",
    abstract: "Benchmark: the gradient all-reduce for the study's trainable sizes (launch it with mpirun).",
    discussion: """
      Sizes: one scalar (latency), then per model the head alone, one layer's LayerNorms, every LayerNorm,
      one weight type in one layer and in every layer, full fine-tuning; for --model and for BERT-base
      (from its configuration; no weights needed). A time is the slowest rank's; the median and the fastest
      of --repeats are shown. The fit (latency + bytes / bandwidth, what `simulate` takes) uses the fastest
      times: on a machine shared with other work a descheduled rank only ever adds time.
      """)

  @OptionGroup var modelFlag: ModelFlag
  @Option(help: "Timed all-reduces per size, at least (small sizes get more, up to 100: 50 MB worth).") var repeats: Int = 5
  @Option(help: "Largest size to run, in scalars (BERT-base full fine-tuning is ~110M: 438 MB per rank).")
  var maxScalars: Int = 200_000_000

  func run() throws {
    guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
    let world = try Communicator.world()
    guard world.size > 1 else { throw ValidationError("comm-bench times an all-reduce between ranks: launch it with mpirun -n 2 or more") }
    let mini = StudyScale.layout(try modelFlag.config())
    let base = StudyScale.layout(StudyScale.bertBase)
    var rows: [(model: String, set: String, scalars: Int)] = [("-", "one scalar", 1)]
    rows += try StudyScale.trainableSizes(mini).map { (modelFlag.url.lastPathComponent, $0.name, $0.scalars) }
    rows += try StudyScale.trainableSizes(base).map { ("bert-base", $0.name, $0.scalars) }
    rows = rows.filter { $0.scalars <= maxScalars }
    let hosts = world.hostNames()
    let p = world.size
    if world.rank == 0 {
      print("comm-bench: \(p) rank(s) on \(Set(hosts).sorted().joined(separator: ", ")); "
        + "BERT-base has \(base.count) parameters with a two-label head (from its config)")
      print("model                set            scalars         MB    median ms     min ms  algbw GB/s  busbw GB/s")
    }
    let largest = rows.map(\.scalars).max() ?? 1
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: largest)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: Float(world.rank + 1), count: largest)
    var fit: [(bytes: Double, seconds: Double)] = []
    for row in rows {
      world.barrier()
      world.allreduceSum(buffer, count: row.scalars)       // warm-up (connections, buffers)
      var times: [Double] = []
      let bytes = 4 * Double(row.scalars)
      for _ in 0..<max(repeats, min(100, Int(5e7 / bytes))) {
        world.barrier()
        let start = DispatchTime.now().uptimeNanoseconds
        world.allreduceSum(buffer, count: row.scalars)
        let mine = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        // The slowest rank's time: an all-reduce is done when every rank has the sum.
        let all = world.allgather(bytes: withUnsafeBytes(of: mine) { Array($0) })
        times.append(all.map { $0.withUnsafeBytes { $0.load(as: Double.self) } }.max() ?? mine)
      }
      times.sort()
      let median = times[times.count / 2], fastest = times[0]
      fit.append((bytes, fastest))
      if world.rank == 0 {
        // Bandwidths from the median time; busbw is what each rank's link carries (2(p-1)/p of the bytes).
        let alg = bytes / median / 1e9, bus = alg * 2 * Double(p - 1) / Double(max(p, 1))
        print(row.model.padding(toLength: 20, withPad: " ", startingAt: 0) + " "
          + row.set.padding(toLength: 12, withPad: " ", startingAt: 0)
          + String(format: " %11d %10.3f %12.3f %10.3f %11.3f %11.3f", row.scalars, bytes / 1e6, median * 1e3,
                   fastest * 1e3, alg, bus))
        fflush(stdout)
      }
    }
    // latency + bytes / bandwidth: the latency from the fastest all-reduce of at most 64 KB, the
    // bandwidth through it and the largest size.
    let latency = fit.filter { $0.bytes <= 65_536 }.map(\.seconds).min()
    if world.rank == 0, let latency, let big = fit.max(by: { $0.bytes < $1.bytes }), big.seconds > latency {
      let bandwidth = big.bytes / (big.seconds - latency)
      print(String(format: "fit: latency %.1f us, bandwidth %.3f GB/s (fastest times: <= 64 KB, and the largest size)",
                   latency * 1e6, bandwidth / 1e9))
      print(String(format: "simulate flags: --latency %.3e --bandwidth %.4e", latency, bandwidth))
    }
  }
}

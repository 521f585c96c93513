import Foundation
import PETLKernels
import PETLModel

/// What `swift-petl bench` measures: one training step per trainable set of the performance table (and
/// inference) on a real model, beside a measured sgemm rate, each row's memory and, optionally,
/// PyTorch timed in the same run (TorchBenchmark.swift). It prints as it goes, so a long run shows
/// each row when it is done.
public struct Benchmark: Sendable {
  /// The model folder (`--model`), also passed to the PyTorch script.
  public var model: String
  /// Timed steps per row (the median is reported) and untimed warm-up steps before them.
  public var steps: Int
  public var warmup: Int
  /// Engine threads; nil keeps the worker pool as it is (OPENBLAS_NUM_THREADS, else the core count).
  public var threads: Int?
  /// A Python with torch + transformers: also run `torchScript` and print ratios.
  public var torch: String?
  public var torchScript: String
  /// Row names (`BenchRow.all`) to run.
  public var rows: [String]
  public var batch: Int
  public var seq: Int

  public init(model: String, steps: Int, warmup: Int, threads: Int?, torch: String?, torchScript: String,
              rows: [String], batch: Int, seq: Int) {
    self.model = model; self.steps = steps; self.warmup = warmup; self.threads = threads; self.torch = torch
    self.torchScript = torchScript; self.rows = rows; self.batch = batch; self.seq = seq
  }

  var modelDirectory: URL { URL(fileURLWithPath: model) }

  public func run() throws {
    if let threads { Parallel.setThreads(threads) }
    let core = BLAS.coreName
    print("OpenBLAS core: \(core), threads: \(Parallel.threads), OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "(unset)")")
    if BLASCore.isGeneric(core) {
      print(String(repeating: "!", count: 78))
      print("!! OpenBLAS uses the GENERIC '\(core)' kernel: GEMMs run ~5x below this CPU's speed.")
      print("!! These numbers do NOT represent the engine. Set OPENBLAS_CORETYPE=SkylakeX (or Haswell).")
      print(String(repeating: "!", count: 78))
    }
    print("load before: \(loadAverage())")
    let (m, _) = try EncoderModel.load(directory: modelDirectory, numLabels: 2)
    let b = makeBatch(vocab: m.dims.vocabSize)
    print("model \(model): \(m.dims.layers) layers, hidden \(m.dims.hidden); batch \(batch) x \(seq) tokens; \(warmup) warm-up + \(steps) timed steps, median")

    let gemmRate = sgemmRate()
    print(String(format: "cblas_sgemm 4096x1536x384: %.1f GFLOP/s", gemmRate))

    let wanted = rows
    var results: [(BenchRow, Double, Double)] = []
    let paramMB = Double(4 * m.layout.count) / 1e6
    print(String(format: "memory: parameters %.0f MB; per row, activations + gradients + AdamW state", paramMB))
    print("row              ms     GFLOP/s  %sgemm  (GEMM GFLOP/step)   cell MB")
    for row in BenchRow.all where wanted.contains(row.name) {
      let (ms, flops, bytes) = try time(row, model: m, batch: b)
      let rate = flops / (ms * 1e6)
      results.append((row, ms, rate))
      print(pad(row.name) + String(format: " %8.1f %9.1f %6.0f%%  (%5.1f) %12.0f", ms, rate, 100 * rate / gemmRate,
                                   flops / 1e9, paramMB + Double(bytes) / 1e6))
    }
    print(String(format: "peak resident memory of this process: %.0f MB", Self.peakResidentMB()))
    print("load after: \(loadAverage())")

    guard let torch else { return }
    let torchThreads = threads ?? Parallel.threads
    print("PyTorch (\(torch) \(torchScript), \(torchThreads) thread(s))...")
    let ref = try runTorch(python: torch, threads: torchThreads, rows: results.map(\.0.name))
    print("row              swift ms   torch ms   ratio   goal")
    for (row, ms, _) in results {
      guard let t = ref[row.name] else { print("\(row.name): no PyTorch number"); continue }
      let ratio = ms / t
      print(pad(row.name) + String(format: " %10.1f %10.1f %7.2f   <= %.2f %@", ms, t, ratio, row.goal,
                   (ratio <= row.goal ? "met" : "MISSED") as NSString))
    }
    print("load after torch: \(loadAverage())")
  }

  private func makeBatch(vocab: Int) -> Batch {
    var rng = SeededGenerator(seed: 0)
    let lo = min(1000, vocab - 1)
    let seqs: [(ids: [Int32], types: [Int32])] = (0..<batch).map { _ in
      (ids: (0..<seq).map { _ in Int32(lo + Int(rng.next() % UInt64(vocab - lo))) }, types: [Int32](repeating: 0, count: seq))
    }
    let labels = (0..<batch).map { _ in Float(rng.next() % 2) }
    return Batch(sequences: seqs, labels: labels, exampleIds: (0..<batch).map(UInt64.init))
  }

  /// Median ms per step, GEMM FLOPs per step, and the row's memory beyond the parameters (workspace,
  /// gradient slab, optimizer state).
  private func time(_ row: BenchRow, model m: EncoderModel, batch b: Batch) throws -> (Double, Double, Int) {
    var times: [Double] = []
    var flops = 0
    var bytes = 0
    if row.name == "inference" {
      let ws = Workspace(dims: m.dims)
      ws.storeActivations(from: m.dims.layers - 1)  // no backward follows: layers share buffers
      ws.reserve(for: b)
      for i in 0..<(warmup + steps) {
        let f0 = BLAS.flops, t0 = DispatchTime.now().uptimeNanoseconds
        m.forward(b, ws: ws, training: false, forBackward: false)
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        if i >= warmup { times.append(dt); flops += BLAS.flops - f0 }
      }
      bytes = ws.bytes
    } else {
      let set = try TrainableSet(modules: row.modules, layers: row.layers, layout: m.layout)
      let step = TrainingStep(model: m, trainable: set, optimizer: .adamw, weightDecay: 0.01, maxGradNorm: 1.0)
      step.workspace.reserve(for: b)
      for i in 0..<(warmup + steps) {
        let f0 = BLAS.flops, t0 = DispatchTime.now().uptimeNanoseconds
        step.run(b, lr: 2e-5, dropoutKey: CounterRNG.key(0xBE7C, UInt64(i)))
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        if i >= warmup { times.append(dt); flops += BLAS.flops - f0 }
      }
      bytes = step.workspace.bytes + 4 * set.count * 3  // gradients, AdamW m and v
    }
    return (times.sorted()[times.count / 2], Double(flops) / Double(max(steps, 1)), bytes)
  }

  private func sgemmRate() -> Double {
    let M = 4096, N = 1536, K = 384
    let a = UnsafeMutablePointer<Float>.allocate(capacity: M * K), w = UnsafeMutablePointer<Float>.allocate(capacity: K * N)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: M * N)
    defer { a.deallocate(); w.deallocate(); c.deallocate() }
    for i in 0..<(M * K) { a[i] = Float(i % 17) * 0.01 }
    for i in 0..<(K * N) { w[i] = Float(i % 13) * 0.01 }
    var rates: [Double] = []
    for i in 0..<8 {
      let t0 = DispatchTime.now().uptimeNanoseconds
      BLAS.gemm(transA: false, transB: false, m: M, n: N, k: K, a: a, b: w, c: c)
      let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
      if i >= 2 { rates.append(2 * Double(M * N * K) / s / 1e9) }
    }
    return rates.sorted()[rates.count / 2]
  }

  /// Peak resident memory of this process (MB), for every benchmark's memory column.
  public static func peakResidentMB() -> Double {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1e3  // kB on Linux
  }

  private func pad(_ s: String) -> String { s.padding(toLength: 15, withPad: " ", startingAt: 0) }

  private func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
  }
}

public struct BenchRow: Sendable {
  public let name: String
  public let modules: [TrainableModule]
  public let layers: LayerSelection
  /// Goal: at most this fraction of PyTorch's time.
  public let goal: Double

  public static let all: [BenchRow] = [
    BenchRow(name: "full", modules: [.full], layers: .all, goal: 0.75),
    BenchRow(name: "layernorm_all", modules: [.layernorm], layers: .all, goal: 0.5),
    BenchRow(name: "query_l0", modules: [.query], layers: .indices([0]), goal: 0.5),
    BenchRow(name: "query_l5", modules: [.query], layers: .indices([5]), goal: 0.5),
    BenchRow(name: "layernorm_l5", modules: [.layernorm], layers: .indices([5]), goal: 0.5),
    BenchRow(name: "head", modules: [.classifier], layers: .all, goal: 0.5),
    BenchRow(name: "inference", modules: [], layers: .all, goal: 0.5),
  ]
}

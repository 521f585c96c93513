import Foundation
import PETLKernels
import PETLModel

/// What `swift-petl bench` measures: one training step per trainable set of the performance table (and
/// inference) on a real model, beside a measured GEMM rate, each row's memory and, optionally,
/// PyTorch timed in the same run (TorchBenchmark.swift). In bf16 every row also runs in fp32 (the
/// speed-up and both memories; `fp32Baseline`) and PyTorch runs under autocast bf16 and, with the
/// baseline, in fp32 too (each precision against its own). It prints as it
/// goes, so a long run shows each row when it is done.
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
  /// The precision of the timed rows (bf16: PyTorch under autocast too).
  public var precision: Precision = .fp32
  /// In bf16, also time every row in fp32.
  public var fp32Baseline = true

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
    print("CPU: \(Self.cpuModel); oneDNN \(OneDNN.version) (\(OneDNN.isa)); bf16 instructions: "
          + (BF16Hardware.instructions().isEmpty ? "none" : BF16Hardware.instructions().joined(separator: ", ")))
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

    let gemm32 = Self.gemmRate(.fp32)
    print(String(format: "fp32 GEMM 4096x1536x384 (BLAS.gemm, on %@): %.1f GFLOP/s", (FP32Backend.usesOneDNN ? "oneDNN" : "OpenBLAS") as NSString, gemm32))
    let bf16 = precision == .bf16
    let gemm16 = bf16 ? Self.gemmRate(.bf16) : 0
    if bf16 { print(String(format: "bf16 GEMM 4096x1536x384 (oneDNN, fp32 accumulation): %.1f GFLOP/s", gemm16)) }

    var results: [(BenchRow, Double)] = [], results32: [(BenchRow, Double)] = []
    let paramMB = Double(4 * m.layout.count) / 1e6
    print(String(format: "memory: fp32 parameters %.0f MB; per row, parameters + activations + gradients + AdamW state%@", paramMB,
                 bf16 ? " (+ the bf16 copies of the weights)" : ""))
    print(bf16 ? "row              bf16 ms  GFLOP/s  %bf16gemm   fp32 ms  speed-up   MB fp32   MB bf16"
               : "row              ms     GFLOP/s  %gemm  (GEMM GFLOP/step)   cell MB")
    for row in BenchRow.all where rows.contains(row.name) {
      try m.setPrecision(.fp32)
      let f = bf16 && !fp32Baseline ? Timed(ms: .nan, flops: 0, bytes: 0) : try time(row, model: m, batch: b)
      guard bf16 else {
        results.append((row, f.ms))
        print(pad(row.name) + String(format: " %8.1f %9.1f %6.0f%%  (%5.1f) %12.0f", f.ms, f.rate, 100 * f.rate / gemm32,
                                     f.flops / 1e9, paramMB + Double(f.bytes) / 1e6))
        continue
      }
      try m.setPrecision(.bf16)
      let t = try time(row, model: m, batch: b)
      results.append((row, t.ms))
      if fp32Baseline { results32.append((row, f.ms)) }
      print(pad(row.name) + String(format: " %8.1f %8.1f %8.0f%% %9.1f %8.2fx %9.0f %9.0f", t.ms, t.rate, 100 * t.rate / gemm16, f.ms,
                                   f.ms / t.ms, paramMB + Double(f.bytes) / 1e6, paramMB + Double(t.bytes + m.bf16OperandBytes) / 1e6))
    }
    print("fp32 products: \(FP32Backend.reason); each shape of the steps, 4096 tokens, best of 3:")
    for line in FP32Backend.report() { print("  " + line) }
    print("oneDNN matmul implementations: \(OneDNN.implementations.joined(separator: ", "))")
    print(String(format: "peak resident memory of this process: %.0f MB", Self.peakResidentMB()))
    print("load after: \(loadAverage())")

    guard let torch else { return }
    let torchThreads = threads ?? Parallel.threads
    // bf16 with the fp32 baseline: PyTorch fp32 too, in the same run (each precision against its own)
    for (p, timed) in [(Precision.fp32, results32), (precision, results)] where !timed.isEmpty && (p == precision || bf16) {
      print("PyTorch \(p == .bf16 ? "autocast bf16" : "fp32") (\(torch) \(torchScript), \(torchThreads) thread(s))...")
      let ref = try runTorch(python: torch, threads: torchThreads, rows: timed.map(\.0.name), precision: p)
      print("row              swift \(p.rawValue) ms   torch ms   ratio   goal")
      for (row, ms) in timed {
        guard let t = ref[row.name] else { print("\(row.name): no PyTorch number"); continue }
        let ratio = ms / t, goal = row.goal(p)
        print(pad(row.name) + String(format: " %13.1f %10.1f %7.2f   <= %.2f %@", ms, t, ratio, goal,
                     (ratio <= goal ? "met" : "MISSED") as NSString))
      }
      print("load after torch: \(loadAverage())")
    }
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

  /// A row's median ms per step, GEMM FLOPs per step, and memory beyond the parameters (workspace,
  /// gradient slab, optimizer state).
  struct Timed {
    let ms: Double, flops: Double, bytes: Int
    var rate: Double { flops / (ms * 1e6) }
  }

  /// One row in the model's current precision.
  private func time(_ row: BenchRow, model m: EncoderModel, batch b: Batch) throws -> Timed {
    var times: [Double] = []
    var flops = 0
    var bytes = 0
    if row.name == "inference" {
      let ws = Workspace(dims: m.dims, precision: m.precision)
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
      // a LoRA row trains a copy of the model with the row's adapters (PEFT's init: B zero)
      let spec = row.lora.map { LoRASpec(rank: $0.rank, alpha: $0.alpha, dropout: 0, kinds: row.modules.flatMap(\.kinds),
                                         layers: row.layers.resolved(m.dims.layers)) }
      let trained = spec.map { m.withLoRA($0, seed: 0) } ?? m
      if trained !== m { try trained.setPrecision(m.precision) }
      let set = try TrainableSet(modules: row.modules, layers: row.layers, layout: trained.layout,
                                 method: row.lora == nil ? .module : .lora)
      let step = TrainingStep(model: trained, trainable: set, optimizer: .adamw, weightDecay: 0.01, maxGradNorm: 1.0)
      step.workspace.reserve(for: b)
      for i in 0..<(warmup + steps) {
        let f0 = BLAS.flops, t0 = DispatchTime.now().uptimeNanoseconds
        step.run(b, lr: 2e-5, dropoutKey: CounterRNG.key(0xBE7C, UInt64(i)))
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        if i >= warmup { times.append(dt); flops += BLAS.flops - f0 }
      }
      bytes = step.workspace.bytes + 4 * set.count * 3  // gradients, AdamW m and v
    }
    return Timed(ms: times.sorted()[times.count / 2], flops: Double(flops) / Double(max(steps, 1)), bytes: bytes)
  }

  /// The median rate of a 4096x1536x384 product (the FFN's shape at 32 x 128 tokens) split over the
  /// engine's threads as the engine runs it: fp32 through `BLAS.gemm`, bf16 through `Matmul.bf16`.
  static func gemmRate(_ precision: Precision) -> Double {
    let M = 4096, N = 1536, K = 384
    let a = UnsafeMutablePointer<Float>.allocate(capacity: M * K), w = UnsafeMutablePointer<Float>.allocate(capacity: K * N)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: M * N)
    let ab = UnsafeMutablePointer<BF16>.allocate(capacity: M * K), wb = UnsafeMutablePointer<BF16>.allocate(capacity: K * N)
    defer { a.deallocate(); w.deallocate(); c.deallocate(); ab.deallocate(); wb.deallocate() }
    for i in 0..<(M * K) { a[i] = Float(i % 17) * 0.01 }
    for i in 0..<(K * N) { w[i] = Float(i % 13) * 0.01 }
    BFloat16.convert(a, ab, count: M * K)
    BFloat16.convert(w, wb, count: K * N)
    var rates: [Double] = []
    for i in 0..<8 {
      let t0 = DispatchTime.now().uptimeNanoseconds
      switch precision {
      case .fp32: BLAS.gemm(transA: false, transB: false, m: M, n: N, k: K, a: a, b: w, c: c)
      case .bf16: Matmul.bf16(transA: false, transB: false, m: M, n: N, k: K, a: ab, b: wb, c: c)
      }
      let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
      if i >= 2 { rates.append(2 * Double(M * N * K) / s / 1e9) }
    }
    return rates.sorted()[rates.count / 2]
  }

  /// /proc/cpuinfo's model name, family and model (every timing names its CPU).
  static var cpuModel: String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
    var fields: [String: String] = [:]
    for line in text.split(separator: "\n") {
      let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      if parts.count == 2, fields[parts[0]] == nil { fields[parts[0]] = parts[1] }
    }
    return "\(fields["model name"] ?? "unknown") (family \(fields["cpu family"] ?? "?"), model \(fields["model"] ?? "?"), "
      + "\(ProcessInfo.processInfo.activeProcessorCount) cores)"
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
  /// Goal: at most this fraction of PyTorch fp32's time (LoRA rows: of PEFT's LoRA step).
  public let goalFP32: Double
  /// LoRA rows: the adapters' rank and alpha on `modules` in `layers` (PyTorch runs PEFT's LoRA).
  public var lora: (rank: Int, alpha: Double)? = nil

  /// The goal against PyTorch at `precision` (issue 22: every training row at most 0.6x PyTorch's
  /// autocast bf16, inference 0.5x; issue 25: a LoRA row at most 0.5x PEFT's step in either).
  public func goal(_ precision: Precision) -> Double {
    precision == .fp32 || lora != nil ? goalFP32 : (name == "inference" ? 0.5 : 0.6)
  }

  public static let all: [BenchRow] = [
    BenchRow(name: "full", modules: [.full], layers: .all, goalFP32: 0.75),
    BenchRow(name: "layernorm_all", modules: [.layernorm], layers: .all, goalFP32: 0.5),
    BenchRow(name: "query_l0", modules: [.query], layers: .indices([0]), goalFP32: 0.5),
    BenchRow(name: "query_l5", modules: [.query], layers: .indices([5]), goalFP32: 0.5),
    BenchRow(name: "layernorm_l5", modules: [.layernorm], layers: .indices([5]), goalFP32: 0.5),
    BenchRow(name: "head", modules: [.classifier], layers: .all, goalFP32: 0.5),
    BenchRow(name: "inference", modules: [], layers: .all, goalFP32: 0.5),
    // issue 25: a LoRA step at most 0.5x PEFT's, on query+value in all layers and in one layer
    BenchRow(name: "lora_qv_all", modules: [.query, .value], layers: .all, goalFP32: 0.5, lora: (8, 8)),
    BenchRow(name: "lora_qv_l5", modules: [.query, .value], layers: .indices([5]), goalFP32: 0.5, lora: (8, 8)),
  ]
}

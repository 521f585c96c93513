import ArgumentParser
import Foundation
import PETLKernels
import PETLModel
import PETLText
import PETLData
import PETLTraining
import PETLDistributed
import PETLStudy

/// `swift-petl bench`: times one training step per trainable set of the performance table (and
/// inference) on the real model, beside a measured sgemm rate and, optionally, PyTorch in the same run.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Benchmark: one training step per trainable set (batch 32 x 128, dropout 0.1, AdamW) and inference.")

  @OptionGroup var modelFlag: ModelFlag
  @Option(help: "Timed steps per row (median reported).") var steps: Int = 5
  @Option(help: "Untimed warm-up steps per row.") var warmup: Int = 1
  @Option(help: "Engine threads (default: OPENBLAS_NUM_THREADS, else the core count).") var threads: Int?
  @Option(help: "Python with torch + transformers: also run the PyTorch benchmark and print ratios.") var torch: String?
  @Option(help: "The PyTorch benchmark script.") var torchScript: String = "reference/bench_torch.py"
  @Option(help: "Rows, comma-separated.") var rows: String = BenchRow.all.map(\.name).joined(separator: ",")
  @Option var batch: Int = 32
  @Option var seq: Int = 128
  @Flag(help: "Time the tokenizers instead: one long line of each kind of text, WordPiece (--model) and byte-level BPE (--bpe).")
  var tokenizers = false
  @Option(help: "With --tokenizers: a RoBERTa tokenizer folder (vocab.json, merges.txt).") var bpe: String = "Tests/Fixtures/bpe"
  @Option(help: "With --tokenizers: the line's size in MB.") var lineMb: Double = 10

  func run() throws {
    if tokenizers {
      guard lineMb > 0 && lineMb <= 1000 else { throw ValidationError("--line-mb must be in (0, 1000]") }
      return try TokenizerBench.run(model: modelFlag.url, bpe: URL(fileURLWithPath: bpe), megabytes: lineMb)
    }
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
    let (m, _) = try EncoderModel.load(directory: modelFlag.url, numLabels: 2)
    let b = makeBatch(vocab: m.dims.vocabSize)
    print("model \(modelFlag.model): \(m.dims.layers) layers, hidden \(m.dims.hidden); batch \(batch) x \(seq) tokens; \(warmup) warm-up + \(steps) timed steps, median")

    let gemmRate = sgemmRate()
    print(String(format: "cblas_sgemm 4096x1536x384: %.1f GFLOP/s", gemmRate))

    let wanted = commaList(rows)
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
    print(String(format: "peak resident memory of this process: %.0f MB", peakResidentMB()))
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

  private func runTorch(python: String, threads: Int, rows: [String]) throws -> [String: Double] {
    guard FileManager.default.fileExists(atPath: torchScript) else {
      throw ValidationError("\(torchScript): not found (pass --torch-script)")
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = [torchScript, "--model", modelFlag.model, "--steps", "\(steps)", "--threads", "\(threads)",
                   "--batch", "\(batch)", "--seq", "\(seq)", "--rows", rows.joined(separator: ",")]
    var env = ProcessInfo.processInfo.environment
    env["HF_HUB_OFFLINE"] = "1"
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      throw ValidationError("PyTorch benchmark failed (\(p.terminationStatus)):\n" + String(decoding: errData, as: UTF8.self))
    }
    var ms: [String: Double] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
      guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let row = obj["row"] as? String, let v = obj["ms"] as? Double else { continue }
      ms[row] = v
    }
    return ms
  }

  private func pad(_ s: String) -> String { s.padding(toLength: 15, withPad: " ", startingAt: 0) }

  private func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
  }
}

struct BenchRow {
  let name: String
  let modules: [TrainableModule]
  let layers: LayerSelection
  /// Goal: at most this fraction of PyTorch's time.
  let goal: Double

  static let all: [BenchRow] = [
    BenchRow(name: "full", modules: [.full], layers: .all, goal: 0.75),
    BenchRow(name: "layernorm_all", modules: [.layernorm], layers: .all, goal: 0.5),
    BenchRow(name: "query_l0", modules: [.query], layers: .indices([0]), goal: 0.5),
    BenchRow(name: "query_l5", modules: [.query], layers: .indices([5]), goal: 0.5),
    BenchRow(name: "layernorm_l5", modules: [.layernorm], layers: .indices([5]), goal: 0.5),
    BenchRow(name: "head", modules: [.classifier], layers: .all, goal: 0.5),
    BenchRow(name: "inference", modules: [], layers: .all, goal: 0.5),
  ]
}

/// The process's peak resident memory so far, in MB.
func peakResidentMB() -> Double {
  var usage = rusage()
  getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
  return Double(usage.ru_maxrss) / 1e3  // kB on Linux
}

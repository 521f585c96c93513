import ArgumentParser
import Foundation
import PETLKernels
import PETLModel
import PETLTraining

/// The measurements behind `swift-petl bench`: a row's step time, GEMM rates, PyTorch's numbers.
struct BenchTiming {
  let batch: Batch
  let steps: Int
  let warmup: Int

  /// The bench batch: `batch` sequences of `seq` random ids from [1000, vocab), seed 0.
  static func makeBatch(vocab: Int, batch: Int, seq: Int) -> Batch {
    var rng = SeededGenerator(seed: 0)
    let lo = min(1000, vocab - 1)
    let seqs: [(ids: [Int32], types: [Int32])] = (0..<batch).map { _ in
      (ids: (0..<seq).map { _ in Int32(lo + Int(rng.next() % UInt64(vocab - lo))) }, types: [Int32](repeating: 0, count: seq))
    }
    let labels = (0..<batch).map { _ in Float(rng.next() % 2) }
    return Batch(sequences: seqs, labels: labels, exampleIds: (0..<batch).map(UInt64.init))
  }

  /// Median ms per step, GEMM FLOPs per step, and the row's memory beyond the parameters (workspace,
  /// gradient slab, optimizer state), in the model's current precision.
  func time(_ row: BenchRow, model m: EncoderModel) throws -> (ms: Double, flops: Double, rate: Double, bytes: Int) {
    var times: [Double] = []
    var flops = 0
    var bytes = 0
    let b = batch
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
    let ms = times.sorted()[times.count / 2]
    let f = Double(flops) / Double(max(steps, 1))
    return (ms, f, f / (ms * 1e6), bytes)
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

  /// PyTorch's median ms per row (`reference/bench_torch.py`, autocast bf16 with `precision` bf16).
  static func runTorch(python: String, script: String, model: String, steps: Int, threads: Int, batch: Int, seq: Int,
                       rows: [String], precision: Precision) throws -> [String: Double] {
    guard FileManager.default.fileExists(atPath: script) else {
      throw ValidationError("\(script): not found (pass --torch-script)")
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = [script, "--model", model, "--steps", "\(steps)", "--threads", "\(threads)",
                   "--batch", "\(batch)", "--seq", "\(seq)", "--rows", rows.joined(separator: ","), "--precision", precision.rawValue]
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

  static func peakResidentMB() -> Double {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1e3  // kB on Linux
  }

  static func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
  }

  /// /proc/cpuinfo's model name (every timing names its CPU).
  static var cpuModel: String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
    var name = "unknown", family = "", model = ""
    for line in text.split(separator: "\n") {
      let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      guard parts.count == 2 else { continue }
      if parts[0] == "model name" && name == "unknown" { name = parts[1] }
      if parts[0] == "cpu family" && family.isEmpty { family = parts[1] }
      if parts[0] == "model" && model.isEmpty { model = parts[1] }
    }
    return "\(name) (family \(family), model \(model), \(ProcessInfo.processInfo.activeProcessorCount) cores)"
  }
}

import Foundation
import PETLKernels
import PETLSupport

extension Benchmark {
  /// Runs the PyTorch benchmark script (one JSON line per row: `{"row": ..., "ms": ...}`) with the
  /// same model, batch, steps, threads and `precision` (bf16: autocast), offline; the median ms per row it reports. (The CLI checks
  /// that the script exists before any row runs.)
  func runTorch(python: String, threads: Int, rows: [String], precision: Precision) throws -> [String: Double] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = [torchScript, "--model", model, "--steps", "\(steps)", "--threads", "\(threads)",
                   "--batch", "\(batch)", "--seq", "\(seq)", "--rows", rows.joined(separator: ","),
                   "--precision", precision.rawValue]
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
      throw PETLError("PyTorch benchmark failed (\(p.terminationStatus)):\n" + String(decoding: errData, as: UTF8.self))
    }
    var ms: [String: Double] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
      guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let row = obj["row"] as? String, let v = obj["ms"] as? Double else { continue }
      ms[row] = v
    }
    return ms
  }
}

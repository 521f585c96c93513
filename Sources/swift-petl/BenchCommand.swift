import ArgumentParser
import Foundation
import PETLTraining

/// `swift-petl bench`: flags to a `Benchmark` (PETLTraining), which times one training step per
/// trainable set of the performance table (and inference) on the real model, beside a measured sgemm
/// rate and, optionally, PyTorch in the same run.
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

  func validate() throws {
    if torch != nil, !FileManager.default.fileExists(atPath: torchScript) {
      throw ValidationError("\(torchScript): not found (pass --torch-script)")
    }
  }

  func run() throws {
    try Benchmark(model: modelFlag.model, steps: steps, warmup: warmup, threads: threads, torch: torch,
                  torchScript: torchScript, rows: commaList(rows), batch: batch, seq: seq).run()
  }
}

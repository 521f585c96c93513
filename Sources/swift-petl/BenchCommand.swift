import ArgumentParser
import Foundation
import PETLTraining

/// `swift-petl bench`: flags to a `Benchmark` (PETLTraining), which times one training step per
/// trainable set of the performance table (and inference) on the real model, beside a measured GEMM
/// rate and, optionally, PyTorch in the same run; with `--precision bf16` in bf16 beside fp32, against
/// PyTorch's autocast.
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
  @OptionGroup var precisionFlag: PrecisionFlag
  @Flag(inversion: .prefixedNo, help: "With --precision bf16, also time every row in fp32 (the speed-up and both memories; with --torch, PyTorch fp32 too).") var fp32Baseline = true

  func validate() throws {
    if torch != nil, !FileManager.default.fileExists(atPath: torchScript) {
      throw ValidationError("\(torchScript): not found (pass --torch-script)")
    }
  }

  func run() throws {
    if tokenizers {
      guard lineMb > 0 && lineMb <= 1000 else { throw ValidationError("--line-mb must be in (0, 1000]") }
      return try TokenizerBench.run(model: modelFlag.url, bpe: URL(fileURLWithPath: bpe), megabytes: lineMb)
    }
    var bench = Benchmark(model: modelFlag.model, steps: steps, warmup: warmup, threads: threads, torch: torch,
                          torchScript: torchScript, rows: commaList(rows), batch: batch, seq: seq)
    bench.precision = try precisionFlag.choice().precision
    bench.fp32Baseline = fp32Baseline
    try bench.run()
  }
}

import ArgumentParser
import Foundation
import PETLModel
import PETLTraining
import PETLStudy

/// `swift-petl simulate`: the dispatcher replayed on the paper preset at BERT-base's size over many
/// ranks (`DispatchSimulation`), from a measured compute rate and a measured all-reduce.
struct SimulateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "simulate",
    abstract: "Simulate the grid's dispatcher on the paper preset (8 GLUE tasks, BERT-base) over many ranks.",
    discussion: """
      A cell's seconds: its cost-model units (layer-passes over one example) x (24 h^2 n + 4 n^2 h) FLOPs at
      n = max length, over --gflops per rank, split over the --dp ranks of its group, plus one all-reduce
      of 4 x trainable bytes per step (--latency x ceil(log2 dp) + 2(dp-1)/dp x bytes / --bandwidth).
      Measure --gflops with `bench --rows full` and the all-reduce with `comm-bench` (launch/cluster-numbers
      does both). Prints the makespan against its lower bounds (total work / ranks, the longest cell) and
      against ideal DDP buckets (the all-reduce hidden under the backward).
      """)

  @Option(help: "Effective FLOP rate of one rank, GFLOP/s (bench's full row).") var gflops: Double
  @Option(help: "All-reduce latency between two ranks, seconds.") var latency: Double
  @Option(help: "All-reduce bandwidth between two ranks, bytes/s.") var bandwidth: Double
  @Option(help: "Rank counts, comma-separated.") var ranks: String = "8,64,512"
  @Option(help: "Data-parallel group sizes to try, comma-separated (those that divide the ranks).") var dp: String = "1,2,4,8"

  func run() throws {
    guard gflops > 0, latency >= 0, bandwidth > 0 else { throw ValidationError("--gflops and --bandwidth must be positive, --latency >= 0") }
    let rankCounts = try ints(ranks, "--ranks"), groupSizes = try ints(dp, "--dp")
    let config = StudyScale.bertBase
    let layout = StudyScale.layout(config)
    let plan = try StudyScale.paperPlan(config: config)
    let cost = CostModel(layout: layout)
    let h = Double(config.hiddenSize), n = Double(plan.cells[0].options.maxLength)
    let flopsPerUnit = 24 * h * h * n + 4 * n * n * h
    let unit = flopsPerUnit / (gflops * 1e9)
    let network = DispatchSimulation.Network(latency: latency, bandwidth: bandwidth)
    print("simulate: paper preset on \(StudyScale.glueTasks.joined(separator: ", ")): \(plan.cells.count) cells; "
      + "BERT-base \(layout.count) parameters; \(String(format: "%.3g", flopsPerUnit)) FLOPs per unit at \(Int(n)) tokens, "
      + String(format: "%.1f GFLOP/s per rank: %.3g s per unit; all-reduce %.0f us + bytes / %.3f GB/s",
               gflops, unit, latency * 1e6, bandwidth / 1e9))
    print("| ranks | dp | makespan h | work/ranks h | longest cell h | makespan / bound | all-reduce share | with DDP overlap h |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rankCounts {
      for d in groupSizes where d <= r && r % d == 0 {
        let plain = try DispatchSimulation(secondsPerUnit: unit, network: network).run(plan.planned, cost: cost, ranks: r, dp: d)
        let hidden = try DispatchSimulation(secondsPerUnit: unit, network: network, overlap: true)
          .run(plan.planned, cost: cost, ranks: r, dp: d)
        print(String(format: "| %d | %d | %.1f | %.1f | %.1f | %.3f | %.1f%% | %.1f (%+.1f%%) |", r, d, plain.makespan / 3600,
                     plain.workBound / 3600, plain.longestCell / 3600, plain.makespan / plain.bound,
                     100 * plain.communication / plain.work, hidden.makespan / 3600,
                     100 * (hidden.makespan - plain.makespan) / plain.makespan))
        fflush(stdout)
      }
    }
  }

  private func ints(_ text: String, _ flag: String) throws -> [Int] {
    try text.split(separator: ",").map {
      guard let v = Int($0.trimmingCharacters(in: .whitespaces)), v > 0 else {
        throw ValidationError("\(flag): '\($0)' is not a positive integer")
      }
      return v
    }
  }
}

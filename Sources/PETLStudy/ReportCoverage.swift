import Foundation
import PETLModel
import PETLData
import PETLTraining

/// Which cells of the grid the journals imply are absent. The grid is inferred per task from what is
/// present: every module-wise set x the set's learning rates x the task's seeds, and every layer-wise
/// set x the task's layer selections x the set's learning rates x the task's seeds. Learning rates are
/// per set because the grid gives full fine-tuning a different range than a single module.
public struct StudyCoverage: Sendable {
  /// A group of cells with some (learning rate, seed) pairs absent, out of `expected`.
  public struct Gap: Sendable {
    public let group: CellGroup
    public let missing: [(learningRate: Double, seed: UInt64)]
    public let expected: Int
  }

  public let gaps: [Gap]
  public let expectedCells: Int
  public let failed: [JournalRecord]

  public var missingCells: Int { gaps.reduce(0) { $0 + $1.missing.count } }
  public var isPartial: Bool { missingCells > 0 }

  public init(_ results: StudyResults) {
    struct Cell: Hashable { let group: CellGroup; let lr: Double; let seed: UInt64 }
    let present = Set(results.records.map { Cell(group: CellGroup($0.spec), lr: $0.spec.options.learningRate, seed: $0.spec.options.seed) })
    var gaps: [Gap] = []
    var expected = 0
    for task in results.tasks {
      let specs = results.records.map(\.spec).filter { $0.task == task }
      let seeds = Set(specs.map(\.options.seed)).sorted()
      let layerAxes = results.layerWiseAxes(task: task)
      let sets = Set(specs.map { CellGroup($0).set }).sorted(by: StudyOrder.set)
      for set in sets {
        let lrs = Set(specs.filter { CellGroup($0).set == set }.map(\.options.learningRate)).sorted()
        var selections: [LayerSelection] = []
        if results.moduleWiseSets(task: task).contains(set) { selections.append(.all) }
        if layerAxes.sets.contains(set) { selections += layerAxes.layers }
        for layers in selections {
          let group = CellGroup(task: task, set: set, layers: layers)
          let missing = lrs.flatMap { lr in seeds.map { (lr, $0) } }
            .filter { !present.contains(Cell(group: group, lr: $0.0, seed: $0.1)) }
          expected += lrs.count * seeds.count
          if !missing.isEmpty { gaps.append(Gap(group: group, missing: missing, expected: lrs.count * seeds.count)) }
        }
      }
    }
    self.gaps = gaps
    expectedCells = expected
    failed = results.records.filter { $0.status == .failed }
  }
}

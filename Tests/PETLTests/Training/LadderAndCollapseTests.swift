import Foundation
import XCTest
@testable import PETLData
@testable import PETLTraining

/// The learning-rate search's ladder extension, on scripted trajectories whose dev score is a known
/// function of the rate, and the collapse check on outputs whose answer is known.
final class LadderAndCollapseTests: XCTestCase {
  /// A trajectory whose rung accuracy peaks at `peak` (log-scale distance costs 10 points a decade),
  /// whose predictions are all one class before step `leavesChance`, and whose accuracy stays at 0.5
  /// with balanced predictions before step `learns`.
  final class Scripted: SearchTrial {
    let lr: Double, peak: Double, leavesChance: Int, learns: Int
    var stepsDone = 0
    var failure: String? { nil }
    init(lr: Double, peak: Double, leavesChance: Int = 0, learns: Int = 0) {
      self.lr = lr; self.peak = peak; self.leavesChance = leavesChance; self.learns = learns
    }
    func advance(to target: Int) throws { stepsDone = max(stepsDone, target) }
    func evaluateAtRung(task: TaskDescriptor) throws -> [String: Double] {
      let oneClass = stepsDone < leavesChance
      let acc = oneClass || stepsDone < learns ? 0.5 : 0.9 - 0.1 * abs(log10(lr) - log10(peak))
      return ["accuracy": acc, "loss": 1 - acc, SearchRungs.majorityShareKey: oneClass ? 1 : 0.5]
    }
  }

  func search(_ candidates: [Double], bounds: [Double]?, peak: Double, leavesChance: Int = 0, learns: Int = 0,
              chance: Double? = nil, steps: Int = 120) throws -> (Scripted, LearningRateSelection) {
    let task = try TaskDescriptor.named("rte")
    var search = LearningRateSearch(makeRun: { lr, _ in Scripted(lr: lr, peak: peak, leavesChance: leavesChance, learns: learns) },
                                    task: task, totalSteps: steps, log: { _ in })
    search.chanceAccuracy = chance
    return try search.run(candidates, bounds: bounds)
  }

  func testTheLadderExtendsPastTheLowEndUntilTheOptimumIsInterior() throws {
    let (run, sel) = try search([1e-3, 3e-3, 1e-2], bounds: [1e-6, 1], peak: 1e-4)
    XCTAssertEqual(run.lr, 1e-4, accuracy: 2e-5)
    XCTAssertEqual(sel.position, .interior)
    XCTAssertEqual(sel.candidates.count, 6, "3e-4, 1e-4 and 3e-5 tried beyond the low end: \(sel.candidates.map(\.learningRate))")
    XCTAssertEqual(sel.candidates.last!.learningRate, 1e-3 / 27, accuracy: 1e-12)
  }

  func testTheLadderExtendsPastTheHighEndAndStopsAtTheBound() throws {
    let (run, sel) = try search([1e-3, 3e-3, 1e-2], bounds: [1e-4, 0.05], peak: 1)
    // The ratio at the high end is 1e-2 / 3e-3: 1e-2 is challenged by 0.0333, which wins; 0.111 would
    // cross the bound 0.05.
    XCTAssertEqual(sel.candidates.map(\.learningRate).max()!, 0.01 / 0.003 * 0.01, accuracy: 1e-12)
    XCTAssertEqual(sel.candidates.count, 4)
    XCTAssertEqual(run.lr, 0.01 / 0.003 * 0.01, accuracy: 1e-12)
    XCTAssertEqual(sel.position, .atBound)
  }

  func testWithoutBoundsTheChoiceStaysAmongTheCandidates() throws {
    let (run, sel) = try search([1e-3, 3e-3, 1e-2], bounds: nil, peak: 1)
    XCTAssertEqual(run.lr, 1e-2)
    XCTAssertEqual(sel.candidates.count, 3)
    XCTAssertEqual(sel.position, .atEdge)
    let (inner, interior) = try search([1e-3, 3e-3, 1e-2], bounds: [1e-4, 1], peak: 3e-3)
    XCTAssertEqual(inner.lr, 3e-3)
    XCTAssertEqual(interior.candidates.count, 3, "an interior winner is not challenged")
  }

  func testALastRungWhoseLeaderPredictsOneClassMovesLater() throws {
    // Every candidate predicts one class until step 40; the last rung (step 24 of 120) moves to 48.
    let (run, sel) = try search([1e-3, 3e-3, 1e-2], bounds: nil, peak: 3e-3, leavesChance: 40)
    XCTAssertEqual(sel.rungSteps, 48)
    XCTAssertEqual(run.lr, 3e-3)
  }

  func testALastRungAtChanceMovesLaterUpToHalfTheCell() throws {
    // Balanced predictions at accuracy 0.5 until step 50, against a chance band up to 0.6: the last
    // rung (step 24 of 120) moves to 48, still at chance, then to 60 (half the cell), where the
    // candidates rank; the winner trains on from there.
    let (run, sel) = try search([1e-3, 3e-3, 1e-2], bounds: [1e-4, 1], peak: 3e-3, learns: 50, chance: 0.6)
    XCTAssertEqual(sel.rungSteps, 60)
    XCTAssertEqual(run.lr, 3e-3)
    XCTAssertFalse(sel.atChance(majorityShare: 0.5, examples: 100))
    // Without the rule the rung stays at 24 and keeps the smaller rate of a tie at chance, which the
    // selection then says is at chance (band 0.5 + 0.098 on 100 examples).
    let (old, oldSel) = try search([1e-3, 3e-3, 1e-2], bounds: [1e-4, 1], peak: 3e-3, learns: 50)
    XCTAssertEqual(oldSel.rungSteps, 24)
    XCTAssertNotEqual(old.lr, 3e-3)
    XCTAssertTrue(oldSel.atChance(majorityShare: 0.5, examples: 100))
    // A search that never leaves chance stops moving at half the cell and says it is at chance.
    let (_, never) = try search([1e-3, 3e-3, 1e-2], bounds: [1e-4, 1], peak: 3e-3, learns: 1_000, chance: 0.6)
    XCTAssertEqual(never.rungSteps, 60)
    XCTAssertTrue(never.atChance(majorityShare: 0.5, examples: 100))
    // A search above chance at its rung decides there.
    let (_, early) = try search([1e-3, 3e-3, 1e-2], bounds: [1e-4, 1], peak: 3e-3, chance: 0.6)
    XCTAssertEqual(early.rungSteps, 24)
  }

  func testTheChanceBandOfAMajorityClass() {
    XCTAssertEqual(LearningRateSelection.chanceAccuracy(majorityShare: 0.5, examples: 100)!, 0.598, accuracy: 1e-12)
    // MRPC's dev majority (68.4% paraphrases) on the 204 pairs a rung scores: the band reaches 74.8.
    XCTAssertEqual(LearningRateSelection.chanceAccuracy(majorityShare: 0.684, examples: 204)!, 0.7478, accuracy: 1e-4)
    XCTAssertNil(LearningRateSelection.chanceAccuracy(majorityShare: 1, examples: 100))
  }

  func testASearchWhoseCandidatesNeverLeftChanceSaysSo() {
    func selection(_ accuracies: [Double], reused: UInt64? = nil) -> LearningRateSelection {
      LearningRateSelection(candidates: accuracies.enumerated().map { i, a in
        .init(learningRate: 1e-3 * Double(i + 1), dev: ["accuracy": a, "loss": 0.69], steps: 20) },
        chosen: 1e-3, rungSteps: 20, reusedFromSeed: reused)
    }
    // Majority 0.5 on 100 examples: the band is 0.5 ± 0.098.
    XCTAssertTrue(selection([0.55, 0.42, 0.59]).atChance(majorityShare: 0.5, examples: 100))
    XCTAssertTrue(selection([0.55, 0.30, 0.59]).atChance(majorityShare: 0.5, examples: 100), "below chance is no sign of learning")
    XCTAssertFalse(selection([0.55, 0.42, 0.61]).atChance(majorityShare: 0.5, examples: 100), "one candidate left chance")
    XCTAssertFalse(selection([0.55, 0.42, 0.59]).atChance(majorityShare: 0.5, examples: 400), "a narrower band on more examples")
    XCTAssertFalse(selection([0.55, 0.42, 0.59], reused: 1).atChance(majorityShare: 0.5, examples: 100), "its own cell's search says")
    XCTAssertFalse(selection([]).atChance(majorityShare: 0.5, examples: 100))
  }

  func testCollapseOnOneClassAndOnALossThatNeverLeftChance() throws {
    let task = try TaskDescriptor.named("rte")
    let labels = (0..<200).map { Float($0 % 2) }
    let oneClass = labels.map { _ in [Float(1), 0] }
    let c = Collapse.check(task: task, outputs: oneClass, labels: labels, epochLosses: [0.69, 0.5], trainLabels: labels)
    XCTAssertTrue(c.collapsed)
    XCTAssertEqual(c.predictedShare, 1)
    XCTAssertEqual(c.goldShare, 0.5)
    // Mixed predictions but a training loss at the prior's entropy (ln 2): never left chance.
    let mixed = labels.enumerated().map { i, _ in i % 3 == 0 ? [Float(1), 0] : [0, 1] }
    let flat = Collapse.check(task: task, outputs: mixed, labels: labels, epochLosses: [0.70, 0.69], trainLabels: labels)
    XCTAssertTrue(flat.collapsed)
    XCTAssertTrue(flat.reason!.contains("never left chance"), flat.reason!)
    XCTAssertEqual(flat.chanceLoss!, log(2), accuracy: 1e-9)
    let fine = Collapse.check(task: task, outputs: mixed, labels: labels, epochLosses: [0.69, 0.45], trainLabels: labels)
    XCTAssertFalse(fine.collapsed)
    // A dev set that is 96% one class: 96% of predictions in that class is not a collapse by itself.
    let skewed = (0..<100).map { Float($0 < 96 ? 0 : 1) }
    let mostly = (0..<100).map { i in i < 97 ? [Float(1), 0] : [0, 1] }
    // (Its loss left the prior's entropy, 0.168 nats, well behind.)
    XCTAssertFalse(Collapse.check(task: task, outputs: mostly, labels: skewed, epochLosses: [0.1], trainLabels: skewed).collapsed)
  }

  func testMinStepsRaisesEpochsWhole() {
    var o = TrainOptions()
    o.epochs = 2; o.batchSize = 32
    XCTAssertEqual(CellTrainer.totalSteps(o, examples: 2000), 126)
    o.minSteps = 120
    XCTAssertEqual(CellTrainer.totalSteps(o, examples: 2000), 126, "already enough")
    XCTAssertEqual(CellTrainer.totalSteps(o, examples: 800), 125, "25 steps an epoch: 5 epochs")
    o.maxSteps = 7
    XCTAssertEqual(CellTrainer.totalSteps(o, examples: 800), 7)
  }
}

import Foundation
import XCTest
@testable import PETLModel
@testable import PETLData
@testable import PETLTraining
import PETLSupport

/// Learning rate chosen per cell by successive halving, and the head-only cell's cache: both must give
/// exactly what a plain cell gives, on the real model and the embedded task (short cells).
final class SelectionTests: XCTestCase {
  func context() throws -> StudyContext {
    let data = TestSupport.root.appendingPathComponent("data")
    guard FileManager.default.fileExists(atPath: data.appendingPathComponent("rt-vader").path) else {
      XCTFail("data/rt-vader missing: run launch/setup"); throw PETLError("data missing")
    }
    return try StudyContext(modelDirectory: try TestSupport.requireModel(), dataDirectory: data)
  }

  static func options() -> TrainOptions {
    var o = TrainOptions()
    o.maxTrain = 64; o.maxEval = 48; o.maxLength = 24; o.batchSize = 8; o.epochs = 2
    return o
  }

  func spec(_ modules: [TrainableModule], _ layers: LayerSelection, _ o: TrainOptions) -> CellSpec {
    CellSpec(task: "rt-vader", modules: modules, layers: layers, model: "all-MiniLM-L6-v2", options: o)
  }

  /// Epoch losses and dev metrics, without timings.
  func trajectory(_ r: CellResult) -> [String] {
    r.epochs.map { "\($0.epoch) \($0.trainLoss) \($0.dev.sorted { $0.key < $1.key })" } + ["\(r.steps) \(r.dev.sorted { $0.key < $1.key })"]
  }

  /// The winner goes on from the rung on its own full-length schedule, so the cell IS the plain cell
  /// at the chosen rate, bit for bit (the frozen-prefix cache on, shared by the candidates).
  func testChosenCandidateTrainsExactlyAsAPlainCellAtItsRate() throws {
    let ctx = try context()
    var o = Self.options()
    o.epochs = 3
    o.prefixCache = true
    o.learningRate = 0
    o.learningRateCandidates = [1e-4, 5e-3, 5e-2]
    let selected = try CellTrainer(spec: spec(["layernorm"], .indices([4]), o), context: ctx).run().result
    let sel = try XCTUnwrap(selected.selection)
    // The choice at a fifth of 3 x 8 steps, or at twice that when the leader there still predicted one
    // class (the rung moves while it is at chance, up to half the cell's steps).
    XCTAssertTrue([4, 8].contains(sel.rungSteps), "\(sel.rungSteps)")
    XCTAssertEqual(sel.candidates.map(\.learningRate), [1e-4, 5e-3, 5e-2])
    XCTAssertEqual(sel.candidates.map(\.steps).sorted(), [2, sel.rungSteps, sel.rungSteps], "all to a twelfth, two to the last rung: \(sel.candidates)")
    for c in sel.candidates {
      let correct = try XCTUnwrap(c.dev["accuracy"]) * 24
      XCTAssertEqual(correct, correct.rounded(), accuracy: 1e-9, "scored on the first 24 of the 48 dev sentences")
      XCTAssertNotNil(c.dev["loss"])
    }
    // At the last rung: the better accuracy, then the lower loss, then the smaller rate.
    let finalists = sel.candidates.filter { $0.steps == sel.rungSteps }
    let best = finalists.max { a, b in
      (a.dev["accuracy"]!, -a.dev["loss"]!, -a.learningRate) < (b.dev["accuracy"]!, -b.dev["loss"]!, -b.learningRate)
    }!
    XCTAssertEqual(best.learningRate, sel.chosen)
    var plain = o
    plain.learningRateCandidates = nil
    plain.learningRate = sel.chosen
    let alone = try CellTrainer(spec: spec(["layernorm"], .indices([4]), plain), context: ctx).run().result
    XCTAssertEqual(trajectory(selected), trajectory(alone))
    XCTAssertEqual(selected.moved, alone.moved)
    XCTAssertNotNil(selected.pretrainedMeanAbs)

    // With the rung moving past chance (as the grid and `train` search), up to half the cell (12
    // steps), the winner still trains on as the plain cell at its rate, bit for bit.
    o.rungPastChance = true
    let pastChance = try CellTrainer(spec: spec(["layernorm"], .indices([4]), o), context: ctx).run().result
    let sel2 = try XCTUnwrap(pastChance.selection)
    XCTAssertTrue([4, 8, 12].contains(sel2.rungSteps), "\(sel2.rungSteps)")
    plain.learningRate = sel2.chosen
    let alone2 = try CellTrainer(spec: spec(["layernorm"], .indices([4]), plain), context: ctx).run().result
    XCTAssertEqual(trajectory(pastChance), trajectory(alone2))
  }

  /// Three candidates: all to a twelfth, two to a fifth, one to the end (1.28 cells' steps); two
  /// candidates or too few steps for two rungs: one rung at a fifth.
  func testRungsAndTheirCost() {
    XCTAssertEqual(SearchRungs.rungs(totalSteps: 126, candidates: 3).map { [$0.steps, $0.keep] }, [[10, 2], [25, 1]])
    XCTAssertEqual(SearchRungs.rungs(totalSteps: 126, candidates: 2).map { [$0.steps, $0.keep] }, [[25, 1]])
    XCTAssertEqual(SearchRungs.rungs(totalSteps: 8, candidates: 3).map { [$0.steps, $0.keep] }, [[1, 1]])
    XCTAssertEqual(LearningRateSelection.costFactor(candidates: 3), 0.25 + 2 * (0.2 - 1.0 / 12) + 0.8, accuracy: 1e-12)
    XCTAssertEqual(LearningRateSelection.costFactor(candidates: 2), 1.2, accuracy: 1e-12)
    XCTAssertEqual(LearningRateSelection.costFactor(candidates: 1), 1)
  }

  /// A head-only cell with the cache serves the pooled outputs after the first pass and trains the
  /// classifier as without it (dropout off: the cache's only difference is the frozen encoder's
  /// dropout). Epoch 1 is bit-identical; epoch 2 serves rows computed in epoch 1's batches, whose GEMM
  /// blocking differs from epoch 2's in the last float bits (measured: 1.3e-8 relative on the loss).
  func testHeadOnlyCellFromThePooledCacheMatchesTheUncachedCell() throws {
    let ctx = try context()
    var o = Self.options()
    o.dropout = 0
    o.learningRate = 1e-2
    let uncached = try CellTrainer(spec: spec(["classifier"], .all, o), context: ctx).run().result
    o.prefixCache = true
    let cached = try CellTrainer(spec: spec(["classifier"], .all, o), context: ctx).run().result
    XCTAssertEqual(cached.epochs.count, 2)
    XCTAssertEqual(cached.epochs[0].trainLoss, uncached.epochs[0].trainLoss)
    for (a, b) in zip(cached.epochs, uncached.epochs) {
      XCTAssertEqual(a.trainLoss, b.trainLoss, accuracy: 1e-6 * abs(b.trainLoss))
      XCTAssertEqual(a.dev, b.dev)
    }
    let cache = ctx.prefixCache(try TaskDescriptor.named("rt-vader"), options: o, layer: 6)
    XCTAssertEqual(cache.storedFloats, 64 * 384, "one pooled row per training example")
    XCTAssertEqual(cache.misses, 8, "epoch 1's eight batches fill it")
    XCTAssertEqual(cache.hits, 8, "epoch 2's eight batches are served from it")
    XCTAssertNil(cached.moved, "nothing below the head moved")
  }

  /// The random control at a layer draws only from that layer's parameters.
  func testLayerRandomControlDrawsFromItsLayer() throws {
    let layout = ParameterLayout(dims: ModelDims(vocabSize: 100, hidden: 16, layers: 3, heads: 2, intermediate: 24,
                                                 maxPositions: 8, typeVocab: 2, numLabels: 2, layerNormEps: 1e-12))
    let set = try TrainableSet(modules: ["random"], layers: .indices([1]), layout: layout, randomCount: 40, seed: 3)
    let layer1 = layout.slots.filter { $0.layer == 1 }.map(\.range)
    let head = layout.range(of: .classifier)
    for seg in set.plan.segments where !head.contains(seg.paramOffset) {
      XCTAssertTrue(layer1.contains { $0.contains(seg.paramOffset) }, "offset \(seg.paramOffset) outside layer 1")
    }
    XCTAssertEqual(set.count - head.count, 40)
    XCTAssertEqual(set.plan.lowestLayer, 1)
  }
}

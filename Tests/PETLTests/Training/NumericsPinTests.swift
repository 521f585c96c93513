import Foundation
import XCTest
@testable import PETLModel
@testable import PETLData
@testable import PETLTraining

/// Pins what the engine computes on real weights and real GLUE text, so a restructuring that must
/// not move any number (issue 12) is checked against the numbers from before it: 15 short cells on
/// MRPC (layernorm and value at each layer; full, bias and the head alone), dropout 0, no prefix
/// cache, 16 steps each in 4 epochs: train loss and dev metrics after every epoch, and the mean dev
/// loss at the end (16 steps leave every cell predicting mostly one class, so the metrics alone
/// would hardly notice a change; the dev loss sees every logit).
///
/// The fixture `Tests/Fixtures/pin/mrpc-16-steps.json` was written by this test from the code as it
/// was before the redesign (`SWIFT_PETL_WRITE_PIN=1 swift test -c release --filter NumericsPinTests`).
/// Losses (about 0.7) must agree to 2e-5 absolute: in the fixture a cell's train loss moves by at
/// least 2.6e-3 from one 4-step epoch to the next, so a changed update shows far beyond it, while
/// float32 summation-order differences stay far below. Dev metrics must agree exactly.
final class NumericsPinTests: XCTestCase {
  static let fixture = TestSupport.fixtures.appendingPathComponent("pin/mrpc-16-steps.json")

  static func cells() -> [(label: String, modules: [TrainableModule], layers: LayerSelection, lr: Double)] {
    var out: [(String, [TrainableModule], LayerSelection, Double)] = []
    for module: TrainableModule in [.layernorm, .value] {
      for l in 0..<6 { out.append(("\(module)@\(l)", [module], .indices([l]), 1e-3)) }
    }
    out.append(("full@all", ["full"], .all, 5e-5))
    out.append(("bias@all", ["bias"], .all, 1e-3))
    out.append(("classifier@all", ["classifier"], .all, 1e-3))
    return out
  }

  struct Pinned: Codable, Equatable {
    var trainLosses: [Double]
    var dev: [[String: Double]]
    var devLoss: Double
  }

  func testNumbersAreThoseOfBeforeTheRedesign() throws {
    _ = try TestSupport.requireModel()
    guard FileManager.default.fileExists(atPath: TestSupport.glueDir.appendingPathComponent("MRPC/train.tsv").path) else {
      XCTFail("\(TestSupport.glueDir.path)/MRPC missing"); return
    }
    let context = try StudyContext(modelDirectory: TestSupport.modelDir, dataDirectory: TestSupport.glueDir)
    var o = TrainOptions()
    o.maxTrain = 16; o.maxEval = 32; o.maxLength = 32; o.batchSize = 4; o.epochs = 4
    o.dropout = 0; o.prefixCache = false; o.seed = 3
    var got: [String: Pinned] = [:]
    for cell in Self.cells() {
      var options = o
      options.learningRate = cell.lr
      let spec = CellSpec(task: "mrpc", modules: cell.modules, layers: cell.layers, model: "all-MiniLM-L6-v2", options: options)
      let outcome = try CellTrainer(spec: spec, context: context).run()
      let r = outcome.result
      XCTAssertEqual(r.status, .ok, cell.label)
      XCTAssertEqual(r.steps, 16, cell.label)
      let task = try TaskDescriptor.named("mrpc")
      let dev = try context.data(task, options: options).dev[0].examples
      let outputs = Predictor.outputs(model: outcome.model, ws: Workspace(dims: outcome.model.dims), examples: dev, batchSize: 4)
      got[cell.label] = Pinned(trainLosses: r.epochs.map(\.trainLoss), dev: r.epochs.map(\.dev),
                               devLoss: meanLoss(task: task, outputs: outputs, labels: dev.map(\.label)))
    }
    if ProcessInfo.processInfo.environment["SWIFT_PETL_WRITE_PIN"] == "1" {
      try FileManager.default.createDirectory(at: Self.fixture.deletingLastPathComponent(), withIntermediateDirectories: true)
      let enc = JSONEncoder()
      enc.outputFormatting = [.sortedKeys, .prettyPrinted]
      try enc.encode(got).write(to: Self.fixture)
      return
    }
    let want = try JSONDecoder().decode([String: Pinned].self, from: Data(contentsOf: Self.fixture))
    XCTAssertEqual(Set(got.keys), Set(want.keys))
    for (label, w) in want.sorted(by: { $0.key < $1.key }) {
      guard let g = got[label] else { continue }
      XCTAssertEqual(g.trainLosses.count, w.trainLosses.count, label)
      for (a, b) in zip(g.trainLosses, w.trainLosses) {
        XCTAssertEqual(a, b, accuracy: 2e-5, "\(label): train losses \(g.trainLosses) vs pinned \(w.trainLosses)")
      }
      XCTAssertEqual(g.dev, w.dev, "\(label): dev metrics after each epoch")
      XCTAssertEqual(g.devLoss, w.devLoss, accuracy: 2e-5, "\(label): mean dev loss at the end")
    }
  }
}

import XCTest
@testable import PETLKernels
@testable import PETLModel
@testable import PETLTraining
import Synchronization

/// The workspace's byte count is what it holds: every buffer it allocated, shared ones once.
final class WorkspaceTests: XCTestCase {
  /// `bytes` against the bytes the workspace's buffers hold, counted by the buffers themselves as
  /// they are allocated and freed (`BufferAccount`): after a reserve, a grown reserve, a training
  /// step (whose `random` control allocates the partial-gradient scratch) and with the layers below
  /// the trainable one sharing their buffers; in fp32 and, where oneDNN computes it, bf16 (its
  /// rounded copies are buffers too).
  func testBytesIsEveryBufferTheWorkspaceHolds() throws {
    try check(.fp32)
    if OneDNN.computesBF16 { try check(.bf16) } else { print("WorkspaceTests: bf16 not checked: oneDNN cannot compute bf16 here (\(OneDNN.isa))") }
  }

  func check(_ precision: Precision) throws {
    let dims = ModelDims(vocabSize: 60, hidden: 64, layers: 3, heads: 4, intermediate: 96,
                         maxPositions: 80, typeVocab: 2, numLabels: 2, layerNormEps: 1e-5)
    let m = TestSupport.tinyModel(dims: dims)
    try m.setPrecision(precision)
    let batch = TestSupport.tinyBatch(dims: dims, lengths: [12, 30, 7])
    let longer = TestSupport.tinyBatch(dims: dims, lengths: [40, 3, 22, 9])
    for (storeFrom, modules, layers) in [(0, ["query"], LayerSelection.all), (2, ["random"], .indices([2]))]
      as [(Int, [TrainableModule], LayerSelection)] {
      let set = try TrainableSet(modules: modules, layers: layers, layout: m.layout, randomCount: 50, seed: 1)
      let before = BufferAccount.liveBytes.load(ordering: .relaxed)
      let ws = Workspace(dims: dims, precision: precision)
      func held() -> Int { BufferAccount.liveBytes.load(ordering: .relaxed) - before }
      ws.storeActivations(from: storeFrom)
      ws.reserve(for: batch)
      XCTAssertEqual(ws.bytes, held(), "\(precision) reserved, store from \(storeFrom)")
      ws.reserve(for: longer)
      XCTAssertEqual(ws.bytes, held(), "\(precision) grown, store from \(storeFrom)")
      let pass = m.forward(longer, ws: ws, training: true, dropoutKey: 5)
      m.loss(longer, ws: ws)
      var g = [Float](repeating: 0, count: set.count)
      g.withUnsafeMutableBufferPointer {
        m.backward(longer, ws: ws, plan: set.plan, grads: $0.baseAddress!, after: pass, dropoutKey: 5, training: true)
      }
      XCTAssertEqual(ws.bytes, held(), "\(precision) after a step of \(modules)")
    }
  }
}

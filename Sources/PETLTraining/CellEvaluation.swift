import Foundation
import PETLModel
import PETLData
import PETLSupport

/// Dev evaluation of a cell's current parameters: every dev split, or chosen (split, examples) pairs.
/// Under data parallelism each rank scores a contiguous share and one all-reduce assembles the outputs,
/// so every rank of a group decides alike on what follows (divergence, the learning-rate choice).
struct CellEvaluation {
  let data: TaskData
  let batchSize: Int
  let group: Collective?

  /// Metrics over the splits (all dev splits by default), with the primary split's outputs. With
  /// `splits`, a split's examples must be a prefix of the task's, so that example i is the same
  /// example in the prefix caches.
  func run(model: EncoderModel, ws: Workspace, prefixes: [String: PrefixCache],
           splits: [(split: String, examples: [EncodedExample])]? = nil) throws -> (metrics: [String: Double], primary: [[Float]]) {
    var metrics: [String: Double] = [:]
    var primary: [[Float]] = []
    for (split, examples) in splits ?? data.dev {
      let outputs = Predictor.outputs(model: model, ws: ws, examples: examples, batchSize: batchSize,
                                      group: group, prefix: prefixes[split])
      guard outputs.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
        throw CellFailure("diverged: non-finite outputs on \(data.task.name) \(split)")
      }
      do {
        for (k, v) in try PETLData.evaluate(task: data.task, split: split, outputs: outputs, labels: examples.map(\.label)) { metrics[k] = v }
      } catch let e as PETLError {
        throw PETLError("evaluating \(data.task.name) \(split): \(e.message)")
      }
      if split == data.task.devSplits[0] { primary = outputs }
    }
    return (metrics, primary)
  }

  /// The primary dev split's examples (its first half with `half`): what learning rates are compared on.
  func primary(half: Bool = false) throws -> (split: String, examples: [EncodedExample]) {
    guard let p = data.dev.first(where: { $0.split == data.task.devSplits[0] }) else {
      throw PETLError("\(data.task.name): no \(data.task.devSplits[0]) split to evaluate on")
    }
    return half ? (p.split, Array(p.examples.prefix(Self.rungExamples(p.examples.count)))) : (p.split, p.examples)
  }

  /// How many of the primary split's `n` examples a search's rungs score: the first half.
  static func rungExamples(_ n: Int) -> Int { (n + 1) / 2 }
}

/// Forward passes in eval mode over many examples: sorted by length so batches pack tightly.
public enum Predictor {
  /// Logits (or the regression score) per example, in the examples' order. With a group, each rank
  /// computes a contiguous share (balanced by tokens, as in training) and an all-reduce gives every
  /// rank all outputs. With `prefix` (a
  /// cache of these examples at a frozen layer) the forward starts there: exact, as eval has no dropout.
  public static func outputs(model: EncoderModel, ws: Workspace, examples: [EncodedExample], batchSize: Int = 32,
                             group: Collective? = nil, prefix: PrefixCache? = nil) -> [[Float]] {
    let C = model.dims.numLabels, n = examples.count
    let ranks = group?.size ?? 1, rank = group?.rank ?? 0
    let all = Array(0..<n)
    let mine = TaskData.share(examples, of: all[...], rank: rank, ranks: ranks).sorted { examples[$0].ids.count < examples[$1].ids.count }
    var flat = [Float](repeating: 0, count: n * C)
    var i = 0
    while i < mine.count {
      let idx = mine[i..<min(i + batchSize, mine.count)]
      let batch = TaskData.batch(examples, indices: idx)
      if let prefix {
        prefix.forward(batch, model: model, ws: ws, training: false, forBackward: false)
      } else {
        model.forward(batch, ws: ws, training: false, forBackward: false)
      }
      let logits = ws.outputs(batch: idx.count)
      for (b, e) in idx.enumerated() { for c in 0..<C { flat[e * C + c] = logits[b * C + c] } }
      i += batchSize
    }
    if let group, ranks > 1 { flat.withUnsafeMutableBufferPointer { group.allreduceSum($0.baseAddress!, count: n * C) } }
    return (0..<n).map { Array(flat[($0 * C)..<(($0 + 1) * C)]) }
  }
}

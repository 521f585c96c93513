import Foundation
import PETLData

/// A run that learned nothing the dev set can see: the failed runs of Mosbach et al. (ICLR 2021),
/// which end at the majority class with a training loss that never left chance. Such a run's score
/// is a property of the dev set's label balance, not of the trainable set, so the study never counts
/// it; the cell trains again from another seed (`TrainOptions.restarts`) and the record keeps every
/// attempt with this evidence.
public struct Collapse: Codable, Hashable, Sendable {
  /// The share of dev examples in the most predicted class (classification), or the standard
  /// deviation of the predictions over that of the gold scores (regression).
  public var predictedShare: Double
  /// The same statistic of the gold labels (classification: the majority class's share; regression: 1).
  public var goldShare: Double
  /// The lowest epoch-mean training loss, and the loss of predicting the training labels' prior
  /// (classification: the prior's entropy in nats; regression: the labels' variance).
  public var trainLoss: Double?
  public var chanceLoss: Double?
  /// Why the run counts as collapsed; nil when it does not.
  public var reason: String?

  public var collapsed: Bool { reason != nil }

  /// "(Almost) all one class": at least this share of dev predictions in one class, and at least
  /// halfway from the gold majority's share to 1 (a dev set that is itself nearly all one class
  /// needs nearly all predictions in one class to count).
  public static let oneClassShare = 0.95
  /// "Never left chance": the best epoch's training loss within this fraction of the prior's loss.
  public static let chanceFraction = 0.97
  /// Regression: predictions that vary less than this fraction of the gold scores' spread.
  public static let constantSpread = 0.05

  enum CodingKeys: String, CodingKey {
    case predictedShare = "predicted_share", goldShare = "gold_share", trainLoss = "train_loss"
    case chanceLoss = "chance_loss", reason
  }

  /// The evidence for one run: its dev outputs on the primary split with their labels, the epoch-mean
  /// training losses, and the training labels (for the chance loss).
  public static func check(task: TaskDescriptor, outputs: [[Float]], labels: [Float], epochLosses: [Double],
                           trainLabels: [Float]) -> Collapse {
    let best = epochLosses.filter(\.isFinite).min()
    let chance = chanceLoss(task: task, labels: trainLabels)
    var c: Collapse
    if task.isRegression {
      let spread = standardDeviation(outputs.map { Double($0.first ?? 0) })
      let gold = standardDeviation(labels.map(Double.init))
      c = Collapse(predictedShare: gold > 0 ? spread / gold : 0, goldShare: 1, trainLoss: best, chanceLoss: chance)
      if gold > 0 && spread < constantSpread * gold {
        c.reason = String(format: "predictions nearly constant (spread %.3f of the gold scores')", spread / gold)
      }
    } else {
      let predicted = share(outputs.map(argmax), classes: task.numLabels)
      let gold = share(labels.map { Int($0) }, classes: task.numLabels)
      c = Collapse(predictedShare: predicted, goldShare: gold, trainLoss: best, chanceLoss: chance)
      let bound = max(oneClassShare, (gold + 1) / 2)
      if !labels.isEmpty && predicted >= bound {
        c.reason = String(format: "%.1f%% of dev predictions in one class (gold majority %.1f%%)", 100 * predicted, 100 * gold)
      }
    }
    if c.reason == nil, let best, let chance, chance > 0, best >= chanceFraction * chance {
      c.reason = String(format: "training loss never left chance (best epoch %.4f, chance %.4f)", best, chance)
    }
    return c
  }

  /// The loss of a model that predicts the training labels' prior: its entropy (classification, nats)
  /// or their variance (regression). nil without labels.
  static func chanceLoss(task: TaskDescriptor, labels: [Float]) -> Double? {
    guard !labels.isEmpty else { return nil }
    if task.isRegression {
      let sd = standardDeviation(labels.map(Double.init))
      return sd * sd
    }
    var counts = [Int](repeating: 0, count: max(task.numLabels, 1))
    for l in labels { let k = Int(l); if counts.indices.contains(k) { counts[k] += 1 } }
    let n = Double(labels.count)
    return counts.filter { $0 > 0 }.reduce(0.0) { h, c in let p = Double(c) / n; return h - p * log(p) }
  }

  /// The share of the most frequent class.
  static func share(_ classes: [Int], classes k: Int) -> Double {
    guard !classes.isEmpty else { return 0 }
    var counts = [Int](repeating: 0, count: max(k, 1))
    for c in classes where counts.indices.contains(c) { counts[c] += 1 }
    return Double(counts.max() ?? 0) / Double(classes.count)
  }

  /// Population standard deviation.
  static func standardDeviation(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return 0 }
    let m = xs.reduce(0, +) / Double(xs.count)
    return (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count)).squareRoot()
  }
}

/// The dev predictions of a cell on its primary split, compact, with the gold labels: what the
/// report needs to bootstrap over seeds and dev examples together (`CombinedInterval`).
/// Classification: one class index per example, as digits (at most 10 classes) or comma-separated;
/// regression: the predicted and gold scores.
public struct DevPredictions: Codable, Hashable, Sendable {
  public var predicted: String?
  public var gold: String?
  public var scores: [Float]?
  public var goldScores: [Float]?

  public init(task: TaskDescriptor, outputs: [[Float]], labels: [Float]) {
    if task.isRegression {
      scores = outputs.map { (($0.first ?? 0) * 1e4).rounded() / 1e4 }
      goldScores = labels
    } else {
      predicted = Self.encode(outputs.map(argmax), classes: task.numLabels)
      gold = Self.encode(labels.map { Int($0) }, classes: task.numLabels)
    }
  }

  /// Class indices as a record keeps them (a constant baseline's, for one).
  public init(predicted: [Int], gold: [Int], classes: Int) {
    self.predicted = Self.encode(predicted, classes: classes)
    self.gold = Self.encode(gold, classes: classes)
  }

  /// The recorded class indices, predicted and gold; nil for a regression record or a malformed one.
  public var classes: (predicted: [Int], gold: [Int])? {
    guard let p = predicted, let g = gold else { return nil }
    let ps = Self.decode(p), gs = Self.decode(g)
    guard ps.count == gs.count, !gs.isEmpty, (ps + gs).allSatisfy({ $0 >= 0 }) else { return nil }
    return (ps, gs)
  }

  /// Digits for up to 10 classes, comma-separated beyond (a dev set has more than one example, so a
  /// string without a comma is digits).
  static func encode(_ xs: [Int], classes: Int) -> String {
    classes <= 10 ? String(xs.map { Character(String($0)) }) : xs.map(String.init).joined(separator: ",")
  }

  static func decode(_ s: String) -> [Int] {
    s.contains(",") ? s.split(separator: ",").map { Int($0) ?? -1 } : s.map { $0.wholeNumberValue ?? -1 }
  }

  enum CodingKeys: String, CodingKey { case predicted, gold, scores, goldScores = "gold_scores" }
}

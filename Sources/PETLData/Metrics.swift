import Foundation
import PETLSupport

// GLUE's metrics, computed as the reference implementations do (scikit-learn's `accuracy_score`,
// `f1_score`, `matthews_corrcoef`; SciPy's `pearsonr`, `spearmanr`), in Double.
//
// Degenerate inputs give 0, never NaN: constant predictions (MCC), a constant series (Pearson,
// Spearman; SciPy would return NaN), no positive predictions or labels (F1, as sklearn's default).
// A cell that evaluates to NaN would poison the study's comparisons; 0 is the "no signal" value.

/// Scores one dev split. `outputs` holds the logits per example (argmax, first maximum on ties as
/// NumPy does, for classification) or the single predicted score (regression); `labels` the class
/// indices or gold scores as `Example.label` has them. Keys are the task's base metric names
/// (`accuracy`, `f1`, `mcc`, `pearson`, `spearman`); for MNLI's mismatched split use
/// `evaluate(task:split:outputs:labels:)`, which names them `accuracy_mm`.
public func evaluate(task: TaskDescriptor, outputs: [[Float]], labels: [Float]) throws -> [String: Double] {
  guard !labels.isEmpty else { throw PETLError("evaluate \(task.name): no examples") }
  guard outputs.count == labels.count else {
    throw PETLError("evaluate \(task.name): \(outputs.count) outputs for \(labels.count) labels")
  }
  let width = task.isRegression ? 1 : task.numLabels
  for (i, row) in outputs.enumerated() {
    guard row.count == width else {
      throw PETLError("evaluate \(task.name): example \(i) has \(row.count) outputs, expected \(width)")
    }
    guard row.allSatisfy(\.isFinite) else {
      throw PETLError("evaluate \(task.name): example \(i) has a non-finite output")
    }
  }

  if task.isRegression {
    let predicted = outputs.map { Double($0[0]) }
    let gold = labels.map(Double.init)
    return ["pearson": pearson(predicted, gold), "spearman": spearman(predicted, gold)]
  }

  var gold: [Int] = []
  gold.reserveCapacity(labels.count)
  for (i, label) in labels.enumerated() {
    guard let k = Int(exactly: label), (0..<task.numLabels).contains(k) else {
      throw PETLError("evaluate \(task.name): label \(label) of example \(i) is not a class index in 0..<\(task.numLabels)")
    }
    gold.append(k)
  }
  let predicted = outputs.map(argmax)
  var result: [String: Double] = [:]
  for name in task.metricNames {
    switch name {
    case "accuracy": result[name] = accuracy(predicted, gold)
    case "f1": result[name] = f1PositiveClass(predicted, gold)
    case "mcc": result[name] = matthewsCorrelation(predicted, gold, classes: task.numLabels)
    default: continue  // split-named keys such as MNLI's `accuracy_mm` come from the split, not here
    }
  }
  return result
}

/// `evaluate` for one named dev split, with keys as the study records them: MNLI's `dev_mismatched`
/// gives `accuracy_mm`, every other split the plain names. `split` may be `dev`.
public func evaluate(task: TaskDescriptor, split: String, outputs: [[Float]],
                     labels: [Float]) throws -> [String: Double] {
  let split = try task.resolveSplit(split)
  let metrics = try evaluate(task: task, outputs: outputs, labels: labels)
  return Dictionary(uniqueKeysWithValues: metrics.map { (task.metricKey($0.key, split: split), $0.value) })
}

/// The training objective on held-out examples: mean cross-entropy of the logits (natural log) for
/// classification, mean squared error for regression. Unlike accuracy it moves before a model leaves
/// chance, which is what an early comparison of learning rates needs. NaN for inputs `evaluate` would
/// refuse (no examples, a count or width mismatch, a label that is not a class index).
public func meanLoss(task: TaskDescriptor, outputs: [[Float]], labels: [Float]) -> Double {
  guard !labels.isEmpty, outputs.count == labels.count else { return .nan }
  var sum = 0.0
  for (row, label) in zip(outputs, labels) {
    if task.isRegression {
      guard row.count == 1 else { return .nan }
      let d = Double(row[0]) - Double(label)
      sum += d * d
    } else {
      guard let k = Int(exactly: label), row.indices.contains(k) else { return .nan }
      let m = Double(row.max()!)
      let lse = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
      sum += lse - Double(row[k])
    }
  }
  return sum / Double(labels.count)
}

/// Index of the first largest logit (NumPy's `argmax` tie rule); `predict --output` names its label, so
/// the prediction a user reads is the one the metric scored.
public func argmax(_ logits: [Float]) -> Int {
  var best = 0
  for i in logits.indices.dropFirst() where logits[i] > logits[best] { best = i }
  return best
}

public func accuracy(_ predicted: [Int], _ gold: [Int]) -> Double {
  Double(zip(predicted, gold).filter { $0 == $1 }.count) / Double(gold.count)
}

/// F1 of class 1: 2TP / (2TP + FP + FN); 0 when class 1 is neither predicted nor present.
func f1PositiveClass(_ predicted: [Int], _ gold: [Int]) -> Double {
  var tp = 0, fp = 0, fn = 0
  for (p, g) in zip(predicted, gold) {
    if p == 1 && g == 1 { tp += 1 } else if p == 1 { fp += 1 } else if g == 1 { fn += 1 }
  }
  let denominator = 2 * tp + fp + fn
  return denominator == 0 ? 0 : Double(2 * tp) / Double(denominator)
}

/// Matthews correlation in the multi-class form sklearn uses (for two classes it is the familiar
/// (TP·TN − FP·FN) / sqrt(...)); 0 when either side is constant.
func matthewsCorrelation(_ predicted: [Int], _ gold: [Int], classes: Int) -> Double {
  var predictedCount = [Double](repeating: 0, count: classes)
  var goldCount = [Double](repeating: 0, count: classes)
  var correct = 0.0
  for (p, g) in zip(predicted, gold) {
    predictedCount[p] += 1
    goldCount[g] += 1
    if p == g { correct += 1 }
  }
  let n = Double(gold.count)
  let covPredGold = correct * n - zip(predictedCount, goldCount).map(*).reduce(0, +)
  let covPredPred = n * n - predictedCount.map { $0 * $0 }.reduce(0, +)
  let covGoldGold = n * n - goldCount.map { $0 * $0 }.reduce(0, +)
  guard covPredPred > 0, covGoldGold > 0 else { return 0 }
  return covPredGold / (covPredPred * covGoldGold).squareRoot()
}

/// Pearson's r from centred sums, clipped to [-1, 1] like SciPy; 0 if either series is constant.
func pearson(_ x: [Double], _ y: [Double]) -> Double {
  let n = Double(x.count)
  let meanX = x.reduce(0, +) / n, meanY = y.reduce(0, +) / n
  var sxy = 0.0, sxx = 0.0, syy = 0.0
  for (a, b) in zip(x, y) {
    let dx = a - meanX, dy = b - meanY
    sxy += dx * dy; sxx += dx * dx; syy += dy * dy
  }
  guard sxx > 0, syy > 0 else { return 0 }
  return min(1, max(-1, sxy / (sxx.squareRoot() * syy.squareRoot())))
}

/// Spearman's rho: Pearson's r of the ranks, tied values sharing their average rank.
func spearman(_ x: [Double], _ y: [Double]) -> Double {
  pearson(averageRanks(x), averageRanks(y))
}

/// 1-based ranks; a run of equal values gets the mean of the positions it spans (SciPy's `rankdata`
/// with method "average").
func averageRanks(_ values: [Double]) -> [Double] {
  let order = values.indices.sorted { values[$0] < values[$1] }
  var ranks = [Double](repeating: 0, count: values.count)
  var start = 0
  while start < order.count {
    var end = start + 1
    while end < order.count && values[order[end]] == values[order[start]] { end += 1 }
    let rank = Double(start + 1 + end) / 2  // mean of positions start+1 ... end
    for k in start..<end { ranks[order[k]] = rank }
    start = end
  }
  return ranks
}

/// A base metric (`accuracy`, `f1`, `mcc`; a split-named key such as `accuracy_mm` scores as its base)
/// on class indices, as `evaluate` scores them: for resampling recorded predictions without logits.
public func score(metric: String, predicted: [Int], gold: [Int], classes: Int) -> Double {
  switch metric.split(separator: "_").first.map(String.init) ?? metric {
  case "f1": return f1PositiveClass(predicted, gold)
  case "mcc": return matthewsCorrelation(predicted, gold, classes: classes)
  default: return accuracy(predicted, gold)
  }
}

/// `pearson` or `spearman` on predicted and gold scores, as `evaluate` scores a regression task.
public func score(metric: String, predicted: [Double], gold: [Double]) -> Double {
  metric.hasPrefix("spearman") ? spearman(predicted, gold) : pearson(predicted, gold)
}

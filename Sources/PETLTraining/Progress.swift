import Foundation

/// When and what a cell prints while it trains: step/total, the epoch's running loss, examples per
/// second and the ETA, at most once per interval.
package struct Progress {
  let totalSteps: Int
  let interval: TimeInterval
  let ranks: Int
  let start = Date()
  var last = Date()
  var examples = 0

  init(totalSteps: Int, interval: TimeInterval, ranks: Int) {
    self.totalSteps = totalSteps; self.interval = interval; self.ranks = ranks
  }

  mutating func line(step: Int, epoch: Int, examples n: Int, meanLoss: Double) -> String? {
    examples += n
    let now = Date()
    guard now.timeIntervalSince(last) >= interval, step < totalSteps else { return nil }
    last = now
    let elapsed = now.timeIntervalSince(start)
    let eta = elapsed / Double(step) * Double(totalSteps - step)
    // Under data parallelism a rank's loss is its shard's share of the global mean: scaled by the
    // group size it estimates the mean (the epoch line reports the exact, all-reduced one).
    let loss = meanLoss * Double(ranks)
    return "step \(step)/\(totalSteps) (epoch \(epoch))  loss \(ranks > 1 ? "~" : "")\(String(format: "%.4f", loss))  "
      + "\(String(format: "%.1f", Double(examples) / elapsed)) ex/s  ETA \(Progress.duration(eta))"
  }

  package static func duration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
    return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m"
  }
}

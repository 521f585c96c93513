import PETLKernels

/// Percentile bootstrap over dev examples: how much a single-seed score would move on another draw of
/// the dev set. The report shows it where a standard deviation over seeds cannot be measured (n = 1).
public enum Bootstrap {
  public static let resamples = 1000

  /// The 95% interval [2.5th, 97.5th percentile] of the task's primary metric over `resamples`
  /// resamples of the examples with replacement, seeded (the same cell gives the same interval).
  /// nil when the metric is undefined on some resample too often to say (e.g. constant predictions).
  public static func interval(task: TaskDescriptor, outputs: [[Float]], labels: [Float], seed: UInt64,
                              resamples: Int = Bootstrap.resamples) -> [Double]? {
    let n = labels.count
    guard n > 1, outputs.count == n else { return nil }
    var rng = SeededGenerator(seed: CounterRNG.key(seed, 0x626F_6F74))
    var values: [Double] = []
    values.reserveCapacity(resamples)
    var o = [[Float]](repeating: [], count: n), l = [Float](repeating: 0, count: n)
    for _ in 0..<resamples {
      for i in 0..<n {
        let j = Int(rng.next() % UInt64(n))
        o[i] = outputs[j]; l[i] = labels[j]
      }
      if let v = (try? evaluate(task: task, outputs: o, labels: l))?[task.primaryMetric], v.isFinite { values.append(v) }
    }
    guard values.count >= resamples * 9 / 10 else { return nil }
    values.sort()
    func percentile(_ p: Double) -> Double { values[min(values.count - 1, max(0, Int((p * Double(values.count - 1)).rounded())))] }
    return [percentile(0.025), percentile(0.975)]
  }
}

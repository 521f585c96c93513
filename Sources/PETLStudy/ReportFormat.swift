import Foundation
import PETLTraining

/// How numbers look in the report: scores x100 with one decimal, as in the paper's tables.
enum ReportFormat {
  static func score(_ x: Double) -> String { String(format: "%.1f", x) }

  /// A signed gap; a gap that rounds to zero is `+0.0`, never `-0.0`.
  static func gap(_ x: Double) -> String {
    let rounded = (x * 10).rounded() / 10
    return String(format: "%+.1f", rounded == 0 ? 0 : rounded)
  }

  /// `70.1 [66.0, 74.2] (n=3)` over seeds with the 95% interval over seeds and dev examples, or
  /// `70.1 ±1.2 (n=3)` when the records hold no predictions; one seed: `70.1 [66.0, 74.2]` (95%
  /// bootstrap interval over dev examples), or `70.1 (n=1)` when no interval was recorded. Never a
  /// standard deviation of one.
  static func summary(_ s: SeedSummary) -> String {
    if s.combined, s.n > 1, let i = s.interval { return "\(score(s.mean)) [\(score(i[0])), \(score(i[1]))] (n=\(s.n))" }
    if let std = s.std { return "\(score(s.mean)) ±\(score(std)) (n=\(s.n))" }
    if let i = s.interval { return "\(score(s.mean)) [\(score(i[0])), \(score(i[1]))]" }
    return "\(score(s.mean)) (n=1)"
  }

  static func learningRate(_ lr: Double) -> String { String(format: "%g", lr) }

  static func count(_ n: Int) -> String {
    let digits = String(n)
    var out = ""
    for (i, c) in digits.reversed().enumerated() {
      if i > 0, i % 3 == 0, c != "-" { out.append(",") }
      out.append(c)
    }
    return String(out.reversed())
  }

  static func percent(_ part: Int, of total: Int) -> String {
    total > 0 ? String(format: "%.3g%%", 100 * Double(part) / Double(total)) : "?"
  }

  static func layers(_ l: LayerSelection) -> String {
    switch l {
    case .all: return "all layers"
    case .indices(let i): return i.count == 1 ? "layer \(i[0])" : "layers \(l)"
    }
  }

  /// One CSV field, quoted when it holds a comma, quote or newline.
  static func csv(_ field: String) -> String {
    field.contains(where: { ",\"\n\r".contains($0) }) ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
  }

  /// A task and the metric its cells are ranked by; the name alone when no record says (only failed
  /// cells of a user task).
  static func task(_ task: String, metric: String?) -> String { metric.map { "\(task) (\($0))" } ?? task }
}

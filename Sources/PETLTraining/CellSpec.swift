import Foundation
import PETLSupport

/// Which encoder layers a trainable set covers: every layer (module-wise, the paper's first table) or
/// an explicit list of 0-based layer indices (layer-wise). Encoded in JSON as `"all"` or `[3]`.
public enum LayerSelection: Codable, Hashable, Sendable, CustomStringConvertible {
  case all
  case indices([Int])

  /// Parses `all` or `I[,I...]`; `flag` names the flag in the error.
  public static func parse(_ text: String, flag: String = "--layers") throws -> LayerSelection {
    let t = text.trimmingCharacters(in: .whitespaces)
    if t == "all" { return .all }
    var out: [Int] = []
    for part in t.split(separator: ",", omittingEmptySubsequences: false) {
      guard let i = Int(part.trimmingCharacters(in: .whitespaces)), i >= 0 else {
        throw PETLError("\(flag): expected 'all' or comma-separated layer indices, got '\(text)'")
      }
      if !out.contains(i) { out.append(i) }
    }
    return .indices(out.sorted())
  }

  /// The layer indices on a model of `layers` layers.
  public func resolved(_ layers: Int) -> [Int] {
    switch self {
    case .all: return Array(0..<layers)
    case .indices(let l): return l
    }
  }

  public var description: String {
    switch self {
    case .all: return "all"
    case .indices(let l): return l.map(String.init).joined(separator: ",")
    }
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.singleValueContainer()
    if let s = try? c.decode(String.self), s == "all" { self = .all; return }
    self = .indices(try c.decode([Int].self))
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .all: try c.encode("all")
    case .indices(let l): try c.encode(l)
    }
  }
}

/// One cell of the study: a task, a trainable set (module names x layers), and how it trains (the
/// seed and learning rate live in `options`). The grid, the journal and `train` all speak this type.
public struct CellSpec: Codable, Hashable, Sendable {
  public var task: String
  /// The trainable set, e.g. `[.layernorm]`, `[.query, .value]` (encoded by name: `["layernorm"]`).
  public var modules: [TrainableModule]
  public var layers: LayerSelection
  /// For the `random` control: how many scalars to train (nil otherwise).
  public var randomCount: Int?
  /// The model folder's last path component: cells on different checkpoints are different cells.
  public var model: String
  public var options: TrainOptions

  public init(task: String, modules: [TrainableModule], layers: LayerSelection, randomCount: Int? = nil,
              model: String, options: TrainOptions) {
    self.task = task; self.modules = modules; self.layers = layers
    self.randomCount = randomCount; self.model = model; self.options = options
  }

  /// Canonical JSON (sorted keys), the input of `hash`.
  public var canonicalJSON: String {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? enc.encode(self)) ?? Data(), as: UTF8.self)
  }

  /// 16 hex digits of FNV-1a 64 over the canonical JSON: the cell's identity in the journal.
  public var hash: String { fnv1a64Hex(canonicalJSON) }

  /// Short human label, e.g. `rte layernorm@all seed1 lr1e-03`.
  public var label: String {
    let lr = options.learningRateCandidates.map { "{" + $0.map { String(format: "%.0e", $0) }.joined(separator: ",") + "}" }
      ?? String(format: "%.0e", options.learningRate)
    var m = TrainableModule.name(modules)
    if let k = randomCount { m += "(\(k))" }
    if options.method == .lora { m = "lora:" + m }
    return "\(task) \(m)@\(layers) seed\(options.seed) lr\(lr)"
  }
}

import Foundation
import PETLSupport

/// Where each parameter of the model comes from in a checkpoint, worked out from the safetensors
/// header alone: every size in config.json is checked against the tensors the file holds before
/// the slab is allocated, so a config that asks for more than the file (a vocab_size of 2^31, a
/// billion layers) is one line naming the file, the tensor and both shapes, never an allocation.
/// Also what transformers' load report lists: the tensors the model does not use (unexpected) and
/// the parameters the file lacks (missing: the head, initialised fresh).
public struct CheckpointPlan {
  public let file: URL
  public let layout: ParameterLayout
  /// For each slot of `layout`: the tensor's name in the file, or nil when it is initialised fresh.
  public let sources: [String?]
  /// Tensors of the file no slot reads, in file order (pre-training heads, `position_ids`, ...).
  public let unexpected: [String]
  /// Set when the file has a classifier for another label count than the task's.
  public let headMismatch: String?
  let tensors: SafeTensors

  /// Plans `dims` (from `config`) against `directory/model.safetensors`. `dims.numLabels` may differ
  /// from the file's head (it is then initialised fresh, as transformers does with
  /// `ignore_mismatched_sizes`); every other difference is an error.
  public init(directory: URL, config: EncoderConfig, dims: ModelDims) throws {
    file = directory.appendingPathComponent("model.safetensors")
    let configPath = directory.appendingPathComponent("config.json").path
    try dims.checkFits(in: "\(configPath) with \(dims.numLabels) labels")
    guard FileManager.default.fileExists(atPath: file.path) else {
      throw PETLError("\(file.path): no such file (a HuggingFace model folder needs model.safetensors)")
    }
    let st = try SafeTensors.open(file)
    try Self.checkLayers(st, config: config, configPath: configPath)
    // Only now is the layout built: its per-layer records are bounded by the file's layers.
    let layout = ParameterLayout(dims: dims)
    let available = Set(st.names)
    let prefix = config.family.checkpointPrefix
    func find(_ name: String) -> String? {
      var candidates = [name, prefix + name]
      if name.hasSuffix("LayerNorm.weight") { candidates += candidates.map { $0.replacingOccurrences(of: "LayerNorm.weight", with: "LayerNorm.gamma") } }
      if name.hasSuffix("LayerNorm.bias") { candidates += candidates.map { $0.replacingOccurrences(of: "LayerNorm.bias", with: "LayerNorm.beta") } }
      return candidates.first(where: available.contains)
    }
    var sources: [String?] = []
    var headMismatch: String? = nil
    for slot in layout.slots {
      guard let stored = find(slot.name), let info = st.info(stored) else {
        if slot.module == .pooler || slot.module == .classifier { sources.append(nil); continue }
        throw PETLError("\(file.path): tensor '\(slot.name)' (or '\(prefix)\(slot.name)') is missing for model_type \(config.family.rawValue)")
      }
      guard info.shape == slot.shape else {
        if slot.module == .classifier {  // a head for another label count
          if headMismatch == nil { headMismatch = "the checkpoint's \(stored) is \(info.shape), this task's head \(slot.shape)" }
          sources.append(nil); continue
        }
        throw PETLError("\(file.path): tensor '\(stored)' has shape \(info.shape), config.json implies \(slot.shape)")
      }
      guard info.dtype.isFloat else {
        throw PETLError("\(file.path): tensor '\(stored)' is \(info.dtype.rawValue), not a float type (F32, F16, BF16, F64)")
      }
      sources.append(stored)
    }
    // Never half a head: one mismatched classifier tensor makes the whole classifier fresh.
    if sources.indices.contains(where: { sources[$0] == nil && layout.slots[$0].module == .classifier }) {
      for i in sources.indices where layout.slots[i].module == .classifier { sources[i] = nil }
    }
    let used = Set(sources.compactMap { $0 })
    self.layout = layout
    self.sources = sources
    self.unexpected = st.names.filter { !used.contains($0) }
    self.headMismatch = headMismatch
    self.tensors = st
  }

  /// The module paths initialised fresh (`classifier`, `pooler`), in layout order.
  public var initialized: [String] {
    var modules: [String] = []
    for (slot, source) in zip(layout.slots, sources) where source == nil {
      let m = layout.modulePath(of: slot)
      if !modules.contains(m) { modules.append(m) }
    }
    return modules
  }

  /// One line in the manner of transformers' load report: how many tensors were not used and how
  /// many parameters are missing, each with the first few names grouped by module (layer indices
  /// folded into `*`). nil when the file holds exactly the model.
  public var summary: String? {
    let missing = zip(layout.slots, sources).filter { $0.1 == nil }.map(\.0.name)
    var parts: [String] = []
    if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected, not used (\(Self.grouped(unexpected)))") }
    if !missing.isEmpty { parts.append("\(missing.count) missing, initialised (\(Self.grouped(missing)))") }
    guard !parts.isEmpty else { return nil }
    return "\(file.path): \(sources.count - missing.count) tensors loaded; " + parts.joined(separator: "; ")
  }

  /// Names grouped by module path with layer numbers folded: "cls.predictions.transform.dense.* 2,
  /// encoder.layer.*.output.dense.* 12, ...", the first `shown` groups in first-seen order.
  static func grouped(_ names: [String], shown: Int = 4) -> String {
    var order: [String] = []
    var counts: [String: Int] = [:]
    var single: [String: String] = [:]
    for name in names {
      var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
      for k in parts.indices.dropFirst() where parts[k - 1] == "layer" && !parts[k].isEmpty && parts[k].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
        parts[k] = "*"
      }
      let key = parts.count > 1 ? parts.dropLast().joined(separator: ".") + ".*" : name
      let short = key.count > 80 ? String(key.prefix(77)) + "..." : key
      if counts[short] == nil { order.append(short); single[short] = name.count > 80 ? short : name }
      counts[short, default: 0] += 1
    }
    let listed = order.prefix(shown).map { counts[$0]! == 1 ? single[$0]! : "\($0) \(counts[$0]!)" }
    return listed.joined(separator: ", ") + (order.count > shown ? ", and \(order.count - shown) more groups" : "")
  }

  /// Refuses a file whose per-layer tensors disagree with the config's layer count: a tensor in a
  /// layer past the last (transformers would only list it as unexpected; here it means the config
  /// and weights are not one model), or a config with more layers than the file holds. Runs before
  /// the layout exists, whose records grow with the layer count.
  static func checkLayers(_ st: SafeTensors, config: EncoderConfig, configPath: String) throws {
    let family = config.family
    let base = family == .distilbert ? "transformer.layer." : "encoder.layer."
    let key = SizeKeys.of(family).layers
    var highest = -1
    for name in st.names {
      let local = name.hasPrefix(family.checkpointPrefix) ? name.dropFirst(family.checkpointPrefix.count) : Substring(name)
      guard local.hasPrefix(base) else { continue }
      let digits = local.dropFirst(base.count).prefix { $0.isASCII && $0.isNumber }
      guard !digits.isEmpty else { continue }
      guard let index = Int(digits), index < config.numHiddenLayers else {
        throw PETLError("\(st.url.path): tensor '\(shown(name, limit: 100))' is in layer \(shown(digits, limit: 24)), "
          + "but \(configPath) has \(key) \(config.numHiddenLayers) (layers 0-\(config.numHiddenLayers - 1))")
      }
      highest = max(highest, index)
    }
    // (A file without any layer tensors fails on its first missing tensor, below.)
    guard highest < 0 || config.numHiddenLayers <= highest + 1 else {
      throw PETLError("\(configPath): \(key) \(config.numHiddenLayers), but \(st.url.path) holds layers 0-\(highest) only")
    }
  }
}

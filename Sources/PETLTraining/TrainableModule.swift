import PETLModel
import PETLSupport
import Foundation

/// A trainable set of the study, named as HuggingFace and PEFT name the modules (`--modules`).
/// Encoded as its name, so cell specs, their hashes and journals read exactly as before the type
/// existed. Parsed (and so validated) once, where the user's text comes in.
public enum TrainableModule: String, CaseIterable, Codable, Hashable, Sendable, CustomStringConvertible {
  case query, key, value
  case attnOut = "attn_out"
  case intermediate, output
  case lnAttn = "ln_attn"
  case lnOut = "ln_out"
  /// Both LayerNorms of a layer.
  case layernorm
  /// BitFit: every bias of the chosen layers (LayerNorm shifts included).
  case bias
  case embeddings, pooler
  /// The head alone (it trains in every set).
  case classifier
  case full
  /// K scalars drawn from the chosen layers' parameters: the control for a set of K scalars.
  case random

  /// Learning-rate group (not to be confused with the encoder family): the fewer and smaller the
  /// parameters, the larger the step they need. A set mixing groups takes the first (smallest-step) one.
  public enum RateGroup: String, Sendable, Comparable, CaseIterable {
    /// Everything, or the whole embedding block.
    case whole
    /// Weight matrices of one kind.
    case matrix
    /// Small vectors (LayerNorm gains and shifts, biases) and the head.
    case vector
    /// The random-subset control: scalars scattered over tensors need larger steps than whole tensors.
    case scattered

    public static func < (a: RateGroup, b: RateGroup) -> Bool {
      allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The group of a trainable set.
    public static func of(_ modules: [TrainableModule]) -> RateGroup { modules.map(\.rateGroup).min() ?? .vector }
  }

  public var description: String { rawValue }

  public var rateGroup: RateGroup {
    switch self {
    case .full, .embeddings: return .whole
    case .query, .key, .value, .attnOut, .intermediate, .output, .pooler: return .matrix
    case .lnAttn, .lnOut, .layernorm, .bias, .classifier: return .vector
    case .random: return .scattered
    }
  }

  /// Whether its cells are about encoder layers: a grid gives the others one `all` cell even with
  /// `--layers each` or a list.
  public var isLayerWise: Bool {
    switch self {
    case .full, .bias, .embeddings, .pooler, .classifier: return false
    default: return true
    }
  }

  /// The encoder module kinds it trains in the chosen layers (empty for the sets defined otherwise:
  /// bias, embeddings, pooler, classifier, full, random).
  public var kinds: [ModuleKind] {
    switch self {
    case .query: return [.query]
    case .key: return [.key]
    case .value: return [.value]
    case .attnOut: return [.attnOut]
    case .intermediate: return [.intermediate]
    case .output: return [.output]
    case .lnAttn: return [.lnAttn]
    case .lnOut: return [.lnOut]
    case .layernorm: return [.lnAttn, .lnOut]
    case .bias, .embeddings, .pooler, .classifier, .full, .random: return []
    }
  }

  /// The one parser of a module name; `flag` names where it came from in the error.
  public init(parsing name: String, flag: String = "--modules") throws {
    guard let m = TrainableModule(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
      throw PETLError("\(flag): unknown trainable set '\(name)' (known: \(Self.allCases.map(\.rawValue).joined(separator: " ")))")
    }
    self = m
  }

  /// A set written `a+b` (one cell training both), e.g. `query+value`.
  public static func parseSet(_ text: String, flag: String = "--modules") throws -> [TrainableModule] {
    let names = text.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
    guard !names.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
      throw PETLError("\(flag): empty module name in '\(text)'")
    }
    return try names.map { try TrainableModule(parsing: $0, flag: flag) }
  }

  /// The name of a set, `a+b`.
  public static func name(_ set: [TrainableModule]) -> String { set.map(\.rawValue).joined(separator: "+") }
}

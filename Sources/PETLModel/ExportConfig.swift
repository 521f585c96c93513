import Foundation
import PETLSupport

/// What the outputs of an exported head mean: the task's class names in class-index order, or one
/// regression score.
public enum ExportLabels: Sendable, Equatable {
  case classification([String])
  case regression

  /// The head's width.
  public var count: Int { names.count }

  /// `id2label`'s names: the classes, or `score` for the one regression output (transformers'
  /// pipeline then reports `{"label": "score", "score": value}`).
  public var names: [String] {
    switch self {
    case .classification(let names): return names
    case .regression: return ["score"]
    }
  }

  /// transformers' `problem_type`: it picks the loss and the pipeline's output function (none for
  /// regression, softmax for single-label classification).
  public var problemType: String {
    self == .regression ? "regression" : "single_label_classification"
  }
}

/// The config.json of an export: the model's own, every member as written, plus what transformers
/// needs to build the family's `*ForSequenceClassification` with the task's labels.
public enum ExportConfig {
  /// The members an export sets, as JSON text, in the order they are written: `architectures`,
  /// `id2label`, `label2id` (transformers derives `num_labels` from them; a `num_labels` member
  /// already there is set to agree), `problem_type`, and `dtype` / `torch_dtype` where present
  /// (the export's weights are float32 whatever the checkpoint held, and transformers loads in the
  /// config's dtype).
  public static func members(family: EncoderFamily, labels: ExportLabels, existing: Set<String> = []) -> [(key: String, json: String)] {
    let names = labels.names
    var out: [(key: String, json: String)] = [
      ("architectures", "[\n    \(JSONObjectText.literal(family.sequenceClassificationClass))\n  ]"),
      ("id2label", "{\n" + names.enumerated().map { "    \"\($0.offset)\": \(JSONObjectText.literal($0.element))" }.joined(separator: ",\n") + "\n  }"),
      ("label2id", "{\n" + names.enumerated().map { "    \(JSONObjectText.literal($0.element)): \($0.offset)" }.joined(separator: ",\n") + "\n  }"),
      ("problem_type", JSONObjectText.literal(labels.problemType)),
    ]
    if existing.contains("num_labels") { out.append(("num_labels", String(labels.count))) }
    for key in ["dtype", "torch_dtype"] where existing.contains(key) { out.append((key, "\"float32\"")) }
    return out
  }

  /// `original` (the model's config.json, read from `path`) with `members(...)` set.
  public static func make(from original: Data, path: String, family: EncoderFamily, labels: ExportLabels) throws -> Data {
    guard Set(labels.names).count == labels.count, labels.count > 0 else {
      throw PETLError("labels \(labels.names): an export needs distinct label names (label2id maps each to its index)")
    }
    var object = try JSONObjectText(original, path: path)
    for m in members(family: family, labels: labels, existing: Set(object.members.map(\.key))) {
      object.set(m.key, json: m.json)
    }
    return object.data
  }
}

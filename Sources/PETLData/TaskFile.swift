import Foundation
import PETLSupport

/// A user task's optional `task.json`: what the folder's files cannot say themselves. Every key is
/// optional; a key this program does not know is an error (a misspelt `"metrics"` silently ignored
/// would train and rank by the wrong metric).
///
/// ```json
/// {"name": "my-rte", "columns": {"text": "premise", "text_pair": "hypothesis", "label": "gold", "id": "pair_id"},
///  "labels": ["entailment", "not_entailment"], "metric": "accuracy"}
/// ```
struct TaskFile: Sendable, Equatable {
  /// The task's name in cell specs and the journal (default: the folder's name).
  var name: String?
  /// Column (or JSON field) names by role: `text`, `text_pair`, `label`, `id`.
  var columns: [String: String] = [:]
  /// The label set in class-index order (default: the training labels, sorted).
  var labels: [String]?
  /// The metric cells are ranked by (default: accuracy).
  var metric: String = "accuracy"

  static let keys = ["name", "columns", "labels", "metric"]
  static let columnRoles = ["text", "text_pair", "label", "id"]
  /// The metrics `evaluate` computes; the last two mean regression (one output, a float label).
  static let metrics = ["accuracy", "f1", "mcc", "pearson", "spearman"]

  var isRegression: Bool { metric == "pearson" || metric == "spearman" }

  init() {}

  init(url: URL) throws {
    let path = url.path
    func fail(_ what: String) -> PETLError { PETLError("\(path): \(what)") }
    guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot read file") }
    let json: JSONValue
    do { json = try JSONValue.parse([UInt8](data)) } catch let error as PETLError {
      throw fail("not valid JSON (\(error.message))")
    }
    guard case .object(let members) = json else { throw fail("expected a JSON object, found \(json.typeName)") }
    for (key, _) in members where !Self.keys.contains(key) {
      throw fail("unknown key '\(shown(key))' (known: \(Self.keys.joined(separator: ", ")))")
    }
    func string(_ value: JSONValue, _ what: String) throws -> String {
      guard case .string(let s) = value else { throw fail("\(what) is \(value.typeName), not a string") }
      return s
    }
    if let v = json["name"] { name = try string(v, "name") }
    if let v = json["metric"] {
      metric = try string(v, "metric")
      guard Self.metrics.contains(metric) else {
        throw fail("unknown metric '\(shown(metric))' (known: \(Self.metrics.joined(separator: ", ")))")
      }
    }
    if let v = json["columns"] {
      guard case .object(let roles) = v else { throw fail("columns is \(v.typeName), not an object") }
      for (role, value) in roles {
        guard Self.columnRoles.contains(role) else {
          throw fail("columns: unknown key '\(shown(role))' (known: \(Self.columnRoles.joined(separator: ", ")))")
        }
        let column = try string(value, "columns.\(role)")
        guard !column.isEmpty else { throw fail("columns.\(role) is empty") }
        if let other = Self.columnRoles.first(where: { columns[$0] == column }) {
          throw fail("columns: '\(shown(column))' is given for both \(other) and \(role)")
        }
        columns[role] = column
      }
    }
    if let v = json["labels"] {
      guard !isRegression else { throw fail("labels: a regression task (metric \(metric)) has no label set") }
      guard case .array(let items) = v else { throw fail("labels is \(v.typeName), not an array") }
      var list: [String] = []
      for (k, item) in items.enumerated() {
        let token: LabelToken
        switch item {
        case .string(let s): token = LabelToken(text: s)
        case .number(let literal): token = LabelToken(text: literal, isNumber: true)
        default: throw fail("labels[\(k)] is \(item.typeName), not a string or a number")
        }
        let label = token.className
        if let problem = Self.problem(label: label) { throw fail("labels[\(k)]: \(problem)") }
        guard !list.contains(label) else { throw fail("labels: '\(shown(label))' is listed twice") }
        list.append(label)
      }
      guard list.count >= 2 else { throw fail("labels: a classification task needs at least two, found \(list.count)") }
      labels = list
    }
  }

  /// Why a string cannot be a class name, or nil: an empty label is a missing one, and `predict
  /// --output` writes label names into a TSV (a column header `logit_<label>` and a cell each).
  static func problem(label: String) -> String? {
    if label.isEmpty { return "empty label" }
    if label.contains(where: { $0 == "\t" || $0.isNewline }) { return "label '\(shown(label))' holds a tab or a line break" }
    return nil
  }
}

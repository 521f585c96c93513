import PETLSupport

/// A `config.json` object read field by field as transformers 5 reads it: Python's `json` (the last
/// of a repeated key wins; `NaN` and `Infinity` are numbers), then the config class's `@strict`
/// field types. Each getter takes the transformers annotation of its field and the class default
/// for a field the file leaves out; anything transformers would refuse is refused here in one line
/// naming the file and the key, so no value is ever read differently. (`reference/config_fixtures.py`
/// records what transformers does with each case; `ConfigFidelityTests` replays them.)
struct ConfigFields {
  let path: String
  private let object: JSONValue
  /// Keys left out of the file, whose class defaults were used (reported by `inspect`).
  private(set) var defaulted: [String] = []

  init(_ bytes: [UInt8], path: String) throws {
    let value: JSONValue
    do { value = try JSONValue.parse(bytes, python: true) } catch {
      throw PETLError("\(path): not valid JSON (\(oneLine(error)))")
    }
    guard case .object = value else { throw PETLError("\(path): not a JSON object (found \(value.typeName))") }
    self.path = path
    object = value
  }

  /// The value of `key`, nil when absent (the last one when the key repeats, as Python's dict). An
  /// absent key whose default is a real value (not None) is recorded in `defaulted`.
  private mutating func value(_ key: String, defaultIsNone: Bool = false) -> JSONValue? {
    guard let v = object[key] else {
      if !defaultIsNone { defaulted.append(key) }
      return nil
    }
    return v
  }

  private func refuse(_ key: String, _ expected: String, _ v: JSONValue) -> PETLError {
    PETLError("\(path): field '\(key)' must be \(expected), got \(Self.describe(v)) (transformers refuses it too)")
  }

  /// A value as the message shows it: the literal for numbers, short text for the rest.
  static func describe(_ v: JSONValue) -> String {
    switch v {
    case .number(let text): return shown(text, limit: 40)
    case .string(let s): return "'" + shown(s, limit: 40) + "'"
    case .bool(let b): return String(b)
    default: return v.typeName
    }
  }

  /// Python's type of a JSON number: `int` for a plain integer literal, else `float`.
  private static func isIntegerLiteral(_ text: String) -> Bool {
    text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: "-") }
  }

  /// An integer literal as Int; one that does not fit is refused (no size this large can be held).
  private func integer(_ key: String, _ text: String) throws -> Int {
    guard let i = Int(text) else {
      throw PETLError("\(path): field '\(key)' is \(Self.describe(.number(text))), beyond any size this machine can hold")
    }
    return i
  }

  /// `int` (a JSON float such as `512.0` or `1e3`, a bool or null is refused, as `@strict` does).
  mutating func int(_ key: String, default d: Int) throws -> Int {
    guard let v = value(key) else { return d }
    guard case .number(let text) = v, Self.isIntegerLiteral(text) else { throw refuse(key, "an integer", v) }
    return try integer(key, text)
  }

  /// `int | None`: nil for null.
  mutating func optionalInt(_ key: String, default d: Int?) throws -> Int? {
    guard let v = value(key, defaultIsNone: d == nil) else { return d }
    if case .null = v { return nil }
    guard case .number(let text) = v, Self.isIntegerLiteral(text) else { throw refuse(key, "an integer or null", v) }
    return try integer(key, text)
  }

  /// `float`: a float literal only (transformers refuses the integer `1` here).
  mutating func float(_ key: String, default d: Double) throws -> Double {
    guard let v = value(key) else { return d }
    guard case .number(let text) = v, !Self.isIntegerLiteral(text), let x = Double(text) else {
      throw refuse(key, "a float", v)
    }
    return x
  }

  /// `float | int`.
  mutating func number(_ key: String, default d: Double) throws -> Double {
    guard let v = value(key) else { return d }
    guard case .number(let text) = v, let x = Double(text) else { throw refuse(key, "a number", v) }
    return x
  }

  /// `float | int | None`: nil for null.
  mutating func optionalNumber(_ key: String, default d: Double?) throws -> Double? {
    guard let v = value(key, defaultIsNone: d == nil) else { return d }
    if case .null = v { return nil }
    guard case .number(let text) = v, let x = Double(text) else { throw refuse(key, "a number or null", v) }
    return x
  }

  /// `str`.
  mutating func string(_ key: String, default d: String) throws -> String {
    guard let v = value(key) else { return d }
    guard case .string(let s) = v else { throw refuse(key, "a string", v) }
    return s
  }

  /// `str` with no class default (`model_type`): nil when absent.
  func optionalString(_ key: String) throws -> String? {
    guard let v = object[key] else { return nil }
    guard case .string(let s) = v else { throw refuse(key, "a string", v) }
    return s
  }

  /// `bool`.
  mutating func bool(_ key: String, default d: Bool) throws -> Bool {
    guard let v = value(key) else { return d }
    guard case .bool(let b) = v else { throw refuse(key, "true or false", v) }
    return b
  }
}

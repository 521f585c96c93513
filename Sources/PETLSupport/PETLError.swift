import Foundation
/// The one error type the library throws for bad input: a single line that names the file, flag or
/// value at fault. The CLI prints `error: <message>` and exits non-zero; nothing traps.
public struct PETLError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  /// The message on one line: a line break that reached it from a file is shown escaped.
  public var description: String {
    guard message.contains(where: \.isNewline) else { return message }
    return String(message.map { $0.isNewline ? "\u{23CE}" : $0 })
  }
}

/// Any error as one short line, for messages that must stay one line: a `PETLError`'s message, a
/// `DecodingError` as what went wrong and where, anything else its description without line breaks.
public func oneLine(_ error: Error) -> String {
  func at(_ path: [CodingKey]) -> String {
    path.isEmpty ? "" : " at '" + path.map { $0.intValue.map(String.init) ?? shown($0.stringValue) }.joined(separator: ".") + "'"
  }
  let text: String
  switch error {
  case let e as PETLError: text = e.message
  case DecodingError.keyNotFound(let key, let ctx): text = "missing '\(shown(key.stringValue))'\(at(ctx.codingPath))"
  case DecodingError.typeMismatch(let type, let ctx): text = "expected \(jsonKind(type))\(at(ctx.codingPath))"
  case DecodingError.valueNotFound(let type, let ctx): text = "expected \(jsonKind(type)), found null\(at(ctx.codingPath))"
  case DecodingError.dataCorrupted(let ctx):
    let underlying = ctx.underlyingError.map { " (\($0))" } ?? ""
    // Foundation's description quotes the offending value whole: a hostile file's 10 MB string.
    text = shown(ctx.debugDescription + underlying, limit: 100) + at(ctx.codingPath)
  default: text = shown(String(describing: error), limit: 100)
  }
  return text.replacingOccurrences(of: "\n", with: " ")
}

/// The JSON name of the Swift type a decoder expected ("an object" rather than "Dictionary<String, Any>").
private func jsonKind(_ type: Any.Type) -> String {
  let name = String(describing: type)
  if name.hasPrefix("Dictionary") { return "an object" }
  if name.hasPrefix("Array") { return "an array" }
  if name == "String" { return "a string" }
  if name == "Bool" { return "true or false" }
  if name.hasPrefix("Int") || name.hasPrefix("UInt") { return "an integer" }
  if name == "Double" || name == "Float" { return "a number" }
  return name
}

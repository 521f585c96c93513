import Foundation
import PETLSupport

/// A JSON object edited member by member in its own text: every member not set keeps the bytes it
/// was written with. Decoding and re-encoding with JSONSerialization would not: it writes `1.0` back
/// as `1`, which Python then reads as an int, so a config field could change type on its way
/// through an export.
public struct JSONObjectText {
  /// The top-level members in file order: the key and the member as written (`"key": value`).
  public private(set) var members: [(key: String, text: String)]

  /// Parses `data` (a JSON object; anything else is an error naming `path`).
  public init(_ data: Data, path: String) throws {
    let bytes = [UInt8](data)
    let found: [(key: String, range: Range<Int>)]?
    do { found = try JSONValue.objectMembers(bytes) } catch { throw PETLError("\(path): \(oneLine(error))") }
    guard let found else { throw PETLError("\(path): not a JSON object") }
    members = found.map { ($0.key, String(decoding: bytes[$0.range], as: UTF8.self)) }
  }

  public func contains(_ key: String) -> Bool { members.contains { $0.key == key } }

  /// Sets `key` to `json` (a JSON value's text): in place when the key is there (a repeated key
  /// keeps only its first place), at the end otherwise.
  public mutating func set(_ key: String, json: String) {
    let text = JSONObjectText.literal(key) + ": " + json
    if let i = members.firstIndex(where: { $0.key == key }) {
      members[i].text = text
      members = members.enumerated().filter { $0.offset == i || $0.element.key != key }.map(\.element)
    } else {
      members.append((key, text))
    }
  }

  /// The object as HF writes its configs: one member per line, two spaces in, a final newline.
  public var data: Data {
    Data(("{\n  " + members.map(\.text).joined(separator: ",\n  ") + "\n}\n").utf8)
  }

  /// The JSON text of a string, number, bool, array or dictionary (keys sorted), slashes unescaped.
  public static func literal(_ value: Any) -> String {
    let data = try! JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
  }
}

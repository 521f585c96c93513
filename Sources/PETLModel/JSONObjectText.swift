import Foundation
import PETLKernels

/// A JSON object edited member by member in its own text: every member not set keeps the bytes it
/// was written with. Decoding and re-encoding with JSONSerialization would not: it writes `1.0` back
/// as `1`, which Python then reads as an int, so a config field could change type on its way
/// through an export.
public struct JSONObjectText {
  /// The top-level members in file order: the key and the member as written (`"key": value`).
  public private(set) var members: [(key: String, text: String)]

  /// Parses `data` (a JSON object; anything else is an error naming `path`).
  public init(_ data: Data, path: String) throws {
    guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
      throw PETLError("\(path): not a JSON object")
    }
    var scanner = Scanner(bytes: [UInt8](data), path: path)
    members = try scanner.members()
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

  /// Finds the top-level members of text that JSONSerialization has already accepted as an object;
  /// it only needs to know where strings and nested values end.
  private struct Scanner {
    let bytes: [UInt8]
    let path: String
    var i = 0

    init(bytes: [UInt8], path: String) { self.bytes = bytes; self.path = path }

    mutating func members() throws -> [(key: String, text: String)] {
      var out: [(key: String, text: String)] = []
      skipSpace()
      try expect(UInt8(ascii: "{"))
      skipSpace()
      if peek() == UInt8(ascii: "}") { return out }
      while true {
        let start = i
        let keyEnd = try skipString()
        let keyText = String(decoding: bytes[start..<keyEnd], as: UTF8.self)
        guard let key = try? JSONSerialization.jsonObject(with: Data(keyText.utf8), options: .fragmentsAllowed) as? String else {
          throw PETLError("\(path): unreadable key \(keyText)")
        }
        skipSpace()
        try expect(UInt8(ascii: ":"))
        skipSpace()
        try skipValue()
        out.append((key, String(decoding: bytes[start..<i], as: UTF8.self)))
        skipSpace()
        if peek() == UInt8(ascii: ",") { i += 1; skipSpace(); continue }
        try expect(UInt8(ascii: "}"))
        return out
      }
    }

    func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

    mutating func skipSpace() {
      while let c = peek(), c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 }
    }

    mutating func expect(_ c: UInt8) throws {
      guard peek() == c else { throw PETLError("\(path): expected '\(Character(UnicodeScalar(c)))' at byte \(i)") }
      i += 1
    }

    /// Skips a string starting at `i`; returns the index after its closing quote.
    mutating func skipString() throws -> Int {
      try expect(UInt8(ascii: "\""))
      while let c = peek() {
        i += 1
        if c == UInt8(ascii: "\\") { i += 1 } else if c == UInt8(ascii: "\"") { return i }
      }
      throw PETLError("\(path): unterminated string")
    }

    mutating func skipValue() throws {
      guard let c = peek() else { throw PETLError("\(path): value missing at the end") }
      switch c {
      case UInt8(ascii: "\""): _ = try skipString()
      case UInt8(ascii: "{"), UInt8(ascii: "["):
        var depth = 0
        while let d = peek() {
          switch d {
          case UInt8(ascii: "\""): _ = try skipString(); continue
          case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
          case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
          default: break
          }
          i += 1
          if depth == 0 { return }
        }
        throw PETLError("\(path): unterminated \(Character(UnicodeScalar(c)))")
      default:  // number, true, false, null
        while let d = peek(), !(d == UInt8(ascii: ",") || d == UInt8(ascii: "}") || d == 0x20 || d == 0x0A || d == 0x0D || d == 0x09) { i += 1 }
      }
    }
  }
}

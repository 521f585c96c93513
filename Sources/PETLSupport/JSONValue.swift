/// A JSON value as the byte-level BPE files and the user's task files need it: objects keep every
/// key in file order with its exact Unicode scalars, and numbers keep their literal text.
///
/// Foundation's `JSONSerialization` is not used because its dictionaries are keyed by Swift `String`,
/// which compares by canonical equivalence: "é" and "e\u{301}" are different vocabulary entries to
/// HuggingFace (Rust compares bytes) but one key to Swift. It also reports `1` and `true` alike, and a
/// task's label `1` must not be read as a boolean, nor `3.8` rounded through a Double before it
/// becomes a Float score.
package indirect enum JSONValue {
  case object([(key: String, value: JSONValue)])
  case array([JSONValue])
  case string(String)
  /// The literal as written (`12`, `-1`, `1.0`, `2e3`): callers decide what they accept.
  case number(String)
  case bool(Bool)
  case null

  /// Parses a whole document. Errors are one line, `line N: what` (the caller adds the path).
  /// `python`: read as Python's `json.loads` reads it, which is how transformers reads `config.json`:
  /// `NaN`, `Infinity` and `-Infinity` are numbers (kept as written), and a `\u` escape of an unpaired
  /// surrogate is accepted (as U+FFFD: a Swift string cannot hold a lone surrogate). A repeated key
  /// keeps every member here; `subscript(key:)` takes the last, as Python's dict does.
  package static func parse(_ bytes: [UInt8], python: Bool = false) throws -> JSONValue {
    do { return try document(bytes, python: python).0 } catch let e as SyntaxError { throw PETLError("line \(e.line): \(e.what)") }
  }

  /// Parses one line of a JSON Lines file. Errors say only what is wrong: the caller names the
  /// file's line, which a line number inside the one-line document would only confuse.
  package static func parse(line bytes: [UInt8]) throws -> JSONValue {
    do { return try document(bytes).0 } catch let e as SyntaxError { throw PETLError(e.what) }
  }

  /// Parses a whole document and gives each top-level object member's byte range in `bytes` (from
  /// the key's opening quote to the end of its value): what an edit that keeps every other member's
  /// bytes needs. nil when the document is not an object.
  package static func objectMembers(_ bytes: [UInt8]) throws -> [(key: String, range: Range<Int>)]? {
    let (value, ranges): (JSONValue, [Range<Int>])
    do { (value, ranges) = try document(bytes, recordingMembers: true) } catch let e as SyntaxError {
      throw PETLError("line \(e.line): \(e.what)")
    }
    guard case .object(let members) = value else { return nil }
    return zip(members, ranges).map { ($0.key, $1) }
  }

  private static func document(_ bytes: [UInt8], recordingMembers: Bool = false, python: Bool = false) throws -> (JSONValue, [Range<Int>]) {
    var parser = Parser(bytes: bytes)
    parser.python = python
    if recordingMembers { parser.topLevelRanges = [] }
    parser.skipWhitespace()
    let value = try parser.value(depth: 0)
    parser.skipWhitespace()
    guard parser.position == bytes.count else { throw parser.failure("unexpected text after the JSON value") }
    return (value, parser.topLevelRanges ?? [])
  }

  private struct SyntaxError: Error {
    let line: Int
    let what: String
  }

  /// The value of a plain non-negative integer literal that fits in Int32 (ids), else nil.
  package var nonNegativeInt32: Int32? {
    guard case .number(let text) = self, !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
          let value = Int32(text) else { return nil }
    return value
  }

  package var typeName: String {
    switch self {
    case .object: return "an object"
    case .array: return "an array"
    case .string: return "a string"
    case .number: return "a number"
    case .bool: return "a boolean"
    case .null: return "null"
    }
  }

  /// The value of `key` in an object (the last one if the key repeats, as serde_json keeps it).
  package subscript(key: String) -> JSONValue? {
    guard case .object(let members) = self else { return nil }
    return members.last { $0.key.unicodeScalars.elementsEqual(key.unicodeScalars) }?.value
  }

  private struct Parser {
    let bytes: [UInt8]
    var position = 0
    /// When set, the byte range of each member of the top-level object is appended here.
    var topLevelRanges: [Range<Int>]? = nil
    /// Python's `json` extensions (see `parse(_:python:)`).
    var python = false
    /// Deep enough for any tokenizer file; bounds the recursion on hostile input.
    static let maxDepth = 256

    init(bytes: [UInt8]) { self.bytes = bytes }

    func failure(_ what: String) -> SyntaxError {
      let end = min(position, bytes.count)
      let line = 1 + bytes[0..<end].reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
      return SyntaxError(line: line, what: what)
    }

    mutating func skipWhitespace() {
      while position < bytes.count {
        switch bytes[position] {
        case 0x20, 0x09, 0x0A, 0x0D: position += 1
        default: return
        }
      }
    }

    mutating func value(depth: Int) throws -> JSONValue {
      guard depth < Parser.maxDepth else { throw failure("nested deeper than \(Parser.maxDepth) levels") }
      guard position < bytes.count else { throw failure("unexpected end of file") }
      switch bytes[position] {
      case UInt8(ascii: "{"): return try object(depth: depth)
      case UInt8(ascii: "["): return try array(depth: depth)
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "t"): try literal("true"); return .bool(true)
      case UInt8(ascii: "f"): try literal("false"); return .bool(false)
      case UInt8(ascii: "n"): try literal("null"); return .null
      case UInt8(ascii: "N") where python: try literal("NaN"); return .number("NaN")
      case UInt8(ascii: "I") where python: try literal("Infinity"); return .number("Infinity")
      case UInt8(ascii: "-") where python && position + 1 < bytes.count && bytes[position + 1] == UInt8(ascii: "I"):
        position += 1; try literal("Infinity"); return .number("-Infinity")
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
      default: throw failure("unexpected character '\(Unicode.Scalar(bytes[position]))'")
      }
    }

    mutating func literal(_ word: String) throws {
      let w = Array(word.utf8)
      guard bytes.count - position >= w.count, Array(bytes[position..<position + w.count]) == w else {
        throw failure("invalid literal (expected \(word))")
      }
      position += w.count
    }

    mutating func object(depth: Int) throws -> JSONValue {
      position += 1
      var members: [(key: String, value: JSONValue)] = []
      skipWhitespace()
      if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
      while true {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw failure("expected a string key") }
        let start = position
        let key = try string()
        skipWhitespace()
        guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw failure("expected ':' after a key") }
        position += 1
        skipWhitespace()
        members.append((key, try value(depth: depth + 1)))
        if depth == 0 { topLevelRanges?.append(start..<position) }
        skipWhitespace()
        guard position < bytes.count else { throw failure("unexpected end of file in an object") }
        if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
        if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
        throw failure("expected ',' or '}' in an object")
      }
    }

    mutating func array(depth: Int) throws -> JSONValue {
      position += 1
      var elements: [JSONValue] = []
      skipWhitespace()
      if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
      while true {
        skipWhitespace()
        elements.append(try value(depth: depth + 1))
        skipWhitespace()
        guard position < bytes.count else { throw failure("unexpected end of file in an array") }
        if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
        if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(elements) }
        throw failure("expected ',' or ']' in an array")
      }
    }

    mutating func number() throws -> String {
      let start = position
      func digits() -> Int {
        let s = position
        while position < bytes.count, bytes[position] >= 48, bytes[position] <= 57 { position += 1 }
        return position - s
      }
      if bytes[position] == UInt8(ascii: "-") { position += 1 }
      let intStart = position
      guard digits() > 0 else { throw failure("invalid number") }
      if bytes[intStart] == UInt8(ascii: "0"), position - intStart > 1 { throw failure("invalid number (leading zero)") }
      if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
        position += 1
        guard digits() > 0 else { throw failure("invalid number") }
      }
      if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
        position += 1
        if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard digits() > 0 else { throw failure("invalid number") }
      }
      return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    /// A string literal: escapes decoded (surrogate pairs joined), raw bytes validated as UTF-8.
    mutating func string() throws -> String {
      position += 1
      var out: [UInt8] = []
      var runStart = position
      while true {
        guard position < bytes.count else { throw failure("unterminated string") }
        let b = bytes[position]
        if b == UInt8(ascii: "\"") {
          out += bytes[runStart..<position]
          position += 1
          break
        }
        if b < 0x20 { throw failure("control character in a string") }
        if b != UInt8(ascii: "\\") { position += 1; continue }
        out += bytes[runStart..<position]
        position += 1
        guard position < bytes.count else { throw failure("unterminated string") }
        let e = bytes[position]
        position += 1
        switch e {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
          var code = try hex4()
          if (0xD800..<0xDC00).contains(code) {
            let paired = bytes.count - position >= 6 && bytes[position] == UInt8(ascii: "\\") && bytes[position + 1] == UInt8(ascii: "u")
            let low = paired ? try hex4(at: position + 2) : 0
            if paired && (0xDC00..<0xE000).contains(low) {
              position += 6
              code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            } else if python {
              code = 0xFFFD
            } else {
              throw failure("unpaired surrogate escape")
            }
          } else if (0xDC00..<0xE000).contains(code) {
            guard python else { throw failure("unpaired surrogate escape") }
            code = 0xFFFD
          }
          UTF8.encode(Unicode.Scalar(code)!) { out.append($0) }
        default: throw failure("invalid escape '\\\(Unicode.Scalar(e))'")
        }
        runStart = position
      }
      guard let text = strictUTF8(out) else { throw failure("string is not valid UTF-8") }
      return text
    }

    mutating func hex4() throws -> UInt32 {
      let v = try hex4(at: position)
      position += 4
      return v
    }

    /// The four hex digits at `at`, without moving.
    func hex4(at start: Int) throws -> UInt32 {
      guard bytes.count - start >= 4 else { throw failure("invalid \\u escape") }
      var v: UInt32 = 0
      for k in 0..<4 {
        let c = bytes[start + k]
        let d: UInt8
        switch c {
        case 48...57: d = c - 48
        case 65...70: d = c - 55
        case 97...102: d = c - 87
        default: throw failure("invalid \\u escape")
        }
        v = v << 4 | UInt32(d)
      }
      return v
    }
  }
}

/// `bytes` as a String if they are valid UTF-8, else nil (`String(decoding:)` would repair them with
/// U+FFFD, and a file that is not UTF-8 must be an error, as it is to HuggingFace).
package func strictUTF8<C: Collection>(_ bytes: C) -> String? where C.Element == UInt8 {
  var iterator = bytes.makeIterator()
  var decoder = UTF8()
  loop: while true {
    switch decoder.decode(&iterator) {
    case .scalarValue: continue
    case .emptyInput: break loop
    case .error: return nil
    }
  }
  return String(decoding: bytes, as: UTF8.self)
}

import Foundation
import PETLSupport

/// A UTF-8 text file held as bytes and cut into records and fields on the bytes, with a `String`
/// built only for the fields a reader keeps: QQP's train split has 364k rows, so no regex and no
/// per-line string splitting. Accepts LF and CRLF line ends, a missing final newline and a leading
/// UTF-8 byte-order mark (MRPC's header has one). Every reader of a row-per-line file goes through it,
/// so they all agree on line numbers, line ends and what invalid UTF-8 is.
struct DelimitedText {
  /// How a line is cut into fields.
  enum Dialect: Sendable, Equatable {
    /// Tab-separated, no quoting: like HF's GLUE readers (`csv.reader` with `quotechar=None`), a `"`
    /// is an ordinary character.
    case tsv
    /// Comma-separated as RFC 4180 has it: a field in double quotes may hold commas, line breaks and
    /// doubled quotes; a quote anywhere else is an error rather than a guess.
    case csv
    /// One field per line (JSON Lines: the reader parses each line).
    case lines

    /// How error messages name the fields of a row.
    var fieldKind: String {
      switch self {
      case .tsv: return "tab-separated columns"
      case .csv: return "comma-separated columns"
      case .lines: return "fields"
      }
    }
  }

  /// The path as errors print it.
  let path: String
  let dialect: Dialect
  private let bytes: [UInt8]
  /// Index of the first byte after the byte-order mark, if any.
  private let bodyStart: Int

  private static let tab = UInt8(ascii: "\t")
  private static let comma = UInt8(ascii: ",")
  private static let quote = UInt8(ascii: "\"")
  private static let lineFeed = UInt8(ascii: "\n")
  private static let carriageReturn = UInt8(ascii: "\r")

  /// Reads `url` whole. `whenMissing` words the error for a file that is not there, so each reader
  /// can say which folder layout it expected.
  init(url: URL, dialect: Dialect = .tsv, whenMissing: () -> String) throws {
    path = url.path
    self.dialect = dialect
    guard FileManager.default.fileExists(atPath: path) else { throw PETLError(whenMissing()) }
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw PETLError("\(path): cannot read: \(error.localizedDescription)")
    }
    bytes = [UInt8](data)
    bodyStart = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    if String(validating: bytes[bodyStart...], as: UTF8.self) == nil {
      throw PETLError("\(path):\(firstInvalidLine()): invalid UTF-8")
    }
  }

  /// Calls `body` with each record's 1-based line number and the byte ranges of its fields (line end
  /// excluded; for a quoted CSV field, what is inside the quotes). A CSV record may span several
  /// physical lines: its number is the line it starts on, and later records keep counting physical
  /// lines, so every number is one an editor shows. An empty line is one empty field, so a reader's
  /// column check rejects it.
  func forEachLine(_ body: (_ line: Int, _ fields: [Range<Int>]) throws -> Void) throws {
    if dialect == .csv { return try forEachCSVRecord(body) }
    var fields: [Range<Int>] = []
    fields.reserveCapacity(16)
    var line = 0
    var start = bodyStart
    while start < bytes.count {
      line += 1
      fields.removeAll(keepingCapacity: true)
      var fieldStart = start
      var end = start
      while end < bytes.count && bytes[end] != Self.lineFeed {
        if bytes[end] == Self.tab && dialect == .tsv {
          fields.append(fieldStart..<end)
          fieldStart = end + 1
        }
        end += 1
      }
      var lineEnd = end
      if lineEnd > fieldStart && bytes[lineEnd - 1] == Self.carriageReturn { lineEnd -= 1 }
      fields.append(fieldStart..<lineEnd)
      try body(line, fields)
      start = end + 1
    }
  }

  /// The text of a field. The whole file was validated as UTF-8 when read, so decoding cannot fail.
  /// In CSV a quote inside a field only occurs doubled inside quotes (anything else was refused), so
  /// every `""` is one `"`.
  func text(_ field: Range<Int>) -> String {
    let s = String(decoding: bytes[field], as: UTF8.self)
    guard dialect == .csv, bytes[field].contains(Self.quote) else { return s }
    return s.replacingOccurrences(of: "\"\"", with: "\"")
  }

  /// The raw bytes of a field (JSON Lines: the line a parser reads).
  func raw(_ field: Range<Int>) -> ArraySlice<UInt8> { bytes[field] }

  /// RFC 4180 records. Errors name the physical line where the fault is (for a quote never
  /// closed, the line that opened it).
  private func forEachCSVRecord(_ body: (_ line: Int, _ fields: [Range<Int>]) throws -> Void) throws {
    var fields: [Range<Int>] = []
    var line = 1
    var position = bodyStart
    /// Whether `i` is at a line end (LF, CRLF, or a CR or nothing at the end of the file), and where
    /// the next record starts.
    func lineEnd(at i: Int) -> Int? {
      if i >= bytes.count { return bytes.count }
      if bytes[i] == Self.lineFeed { return i + 1 }
      if bytes[i] == Self.carriageReturn {
        if i + 1 == bytes.count { return i + 1 }
        if bytes[i + 1] == Self.lineFeed { return i + 2 }
      }
      return nil
    }
    while position < bytes.count {
      let recordLine = line
      fields.removeAll(keepingCapacity: true)
      var atEnd = false
      while !atEnd {
        var i = position
        if i < bytes.count && bytes[i] == Self.quote {
          let opened = line
          i += 1
          let start = i
          while true {
            guard i < bytes.count else { throw PETLError("\(path):\(opened): a quoted field is never closed") }
            if bytes[i] == Self.quote {
              if i + 1 < bytes.count && bytes[i + 1] == Self.quote { i += 2; continue }
              break
            }
            if bytes[i] == Self.lineFeed { line += 1 }
            i += 1
          }
          fields.append(start..<i)
          i += 1
          if i < bytes.count && bytes[i] == Self.comma {
            position = i + 1
          } else if let next = lineEnd(at: i) {
            position = next; atEnd = true
          } else {
            throw PETLError("\(path):\(line): text after a field's closing quote (a quote inside a quoted field is written twice)")
          }
        } else {
          while i < bytes.count && bytes[i] != Self.comma && bytes[i] != Self.lineFeed {
            guard bytes[i] != Self.quote else {
              throw PETLError("\(path):\(line): a quote inside an unquoted field (RFC 4180: put the field in quotes and write the quote twice)")
            }
            i += 1
          }
          var end = i
          if (i == bytes.count || bytes[i] == Self.lineFeed) && end > position && bytes[end - 1] == Self.carriageReturn { end -= 1 }
          fields.append(position..<end)
          position = i + 1
          atEnd = i == bytes.count || bytes[i] == Self.lineFeed
        }
      }
      try body(recordLine, fields)
      line += 1
    }
  }

  /// Only on the error path: the 1-based line holding the first invalid UTF-8 sequence.
  private func firstInvalidLine() -> Int {
    var line = 1
    var start = bodyStart
    while start < bytes.count {
      let end = bytes[start...].firstIndex(of: Self.lineFeed) ?? bytes.count
      if String(validating: bytes[start..<end], as: UTF8.self) == nil { return line }
      line += 1
      start = end + 1
    }
    return line
  }
}

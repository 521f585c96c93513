import Foundation
import PETLKernels

/// A UTF-8 text file held as bytes and cut into lines and tab-separated fields on the bytes, with a
/// `String` built only for the fields a reader keeps: QQP's train split has 364k rows, so no regex and
/// no per-line string splitting. Accepts LF and CRLF line ends, a missing final newline and a leading
/// UTF-8 byte-order mark (MRPC's header has one). No quoting: like HF's readers (`csv.reader` with
/// `quotechar=None`), a `"` is an ordinary character.
struct DelimitedText {
  /// The path as errors print it.
  let path: String
  private let bytes: [UInt8]
  /// Index of the first byte after the byte-order mark, if any.
  private let bodyStart: Int

  private static let tab = UInt8(ascii: "\t")
  private static let lineFeed = UInt8(ascii: "\n")
  private static let carriageReturn = UInt8(ascii: "\r")

  /// Reads `url` whole. `whenMissing` words the error for a file that is not there, so each reader
  /// can say which folder layout it expected.
  init(url: URL, whenMissing: () -> String) throws {
    path = url.path
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

  /// Calls `body` with each line's 1-based number and the byte ranges of its tab-separated fields
  /// (line end excluded). An empty line is one empty field, so a reader's column check rejects it.
  func forEachLine(_ body: (_ line: Int, _ fields: [Range<Int>]) throws -> Void) throws {
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
        if bytes[end] == Self.tab {
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
  func text(_ field: Range<Int>) -> String {
    String(decoding: bytes[field], as: UTF8.self)
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

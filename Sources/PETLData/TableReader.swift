import Foundation
import PETLSupport

/// Which columns of a table hold the texts, the label and the row's id, by name. Reading by name
/// states what a file must contain instead of trusting a position; CoLA, the one GLUE file without a
/// header, gets its column names from the layout.
struct ColumnLayout: Sendable, Equatable {
  /// Column names of a file that has no header line; nil when the file's first line is its header.
  var implicitHeader: [String]? = nil
  var textA: String
  var textB: String? = nil
  var label: String
  /// The column that names each row, so predictions join back to the user's rows; nil: none.
  var id: String? = nil
}

/// A label as the file writes it: a TSV or CSV field, a JSON string, or a JSON number's literal.
struct LabelToken: Sendable, Equatable {
  var text: String
  var isNumber = false

  /// The class this token names. A JSON number names the class its decimal text names, so 1, 1.0
  /// and "1" are one class (a JSON Lines file written from integer labels and one written from
  /// string labels mean the same task); other numbers use their shortest decimal text.
  var className: String {
    guard isNumber, let d = Double(text), d.isFinite else { return text }
    if d == d.rounded(), abs(d) < 0x1p53 { return String(Int64(d)) }
    return String(d)
  }

  /// How an error message quotes it: a number as written, a string in quotes.
  var quoted: String { isNumber ? shown(text) : "'\(shown(text))'" }
}

/// One data row as read, before its label means anything: a user task's label set may come from
/// the rows themselves.
struct TableRow: Sendable {
  var line: Int
  var textA: String
  var textB: String?
  var label: LabelToken
  var id: String?
}

/// Reads tables of examples, whatever the file's format: TSV and CSV with a header line (columns by
/// name), JSON Lines (one object per line, fields by name). GLUE's files and the user's go through the
/// same code, so a row is checked, and a label read, one way. Every malformed row throws
/// `<path>:<line>: <what>`; no row is skipped silently.
enum TableReader {
  /// The task's examples in `file`, in file order; at least one.
  static func examples(_ file: DelimitedText, layout: ColumnLayout, task: TaskDescriptor) throws -> [Example] {
    let labels = LabelReader(task: task)
    var examples: [Example] = []
    try forEachRow(file, layout: layout) { row in
      examples.append(Example(textA: row.textA, textB: row.textB, label: try labels.value(row.label, at: file.path, line: row.line),
                              id: row.id))
    }
    guard !examples.isEmpty else { throw PETLError("\(file.path): no data rows") }
    return examples
  }

  /// Calls `body` with each data row.
  static func forEachRow(_ file: DelimitedText, layout: ColumnLayout, _ body: (TableRow) throws -> Void) throws {
    if file.dialect == .lines { return try forEachObject(file, layout: layout, body) }
    var columns = try layout.implicitHeader.map { try ColumnIndices(header: $0, layout: layout, path: file.path, line: 0) }
    try file.forEachLine { line, fields in
      guard let cols = columns else {
        columns = try ColumnIndices(header: fields.map(file.text), layout: layout, path: file.path, line: line)
        return
      }
      guard fields.count == cols.count else {
        throw PETLError("\(file.path):\(line): expected \(cols.count) \(file.dialect.fieldKind), found \(fields.count)")
      }
      let id = try cols.id.map { try checkedID(file.text(fields[$0]), path: file.path, line: line) }
      try body(TableRow(line: line, textA: file.text(fields[cols.textA]), textB: cols.textB.map { file.text(fields[$0]) },
                        label: LabelToken(text: file.text(fields[cols.label])), id: id))
    }
  }

  /// The names a file offers: a TSV or CSV file's header, or the keys of a JSON Lines file's first
  /// object. Used to pick among the default column names before the rows are read.
  static func header(_ file: DelimitedText) throws -> [String] {
    struct Found: Error { let names: [String] }
    do {
      try file.forEachLine { line, fields in
        if file.dialect != .lines { throw Found(names: fields.map(file.text)) }
        guard case .object(let members) = try object(file, line: line, fields[0]) else { return }
        throw Found(names: members.map(\.key))
      }
    } catch let found as Found {
      return found.names
    }
    throw PETLError("\(file.path): the file is empty")
  }

  /// JSON Lines: every line one object holding the layout's fields; texts must be strings, a label
  /// a string or a number, an id a string or a number.
  private static func forEachObject(_ file: DelimitedText, layout: ColumnLayout, _ body: (TableRow) throws -> Void) throws {
    try file.forEachLine { line, fields in
      let object = try object(file, line: line, fields[0])
      func field(_ key: String) throws -> JSONValue {
        guard let value = object[key] else { throw PETLError("\(file.path):\(line): no field '\(shown(key))'") }
        return value
      }
      func text(_ key: String) throws -> String {
        guard case .string(let s) = try field(key) else {
          throw PETLError("\(file.path):\(line): field '\(shown(key))' is \(try field(key).typeName), not a string")
        }
        return s
      }
      func token(_ key: String) throws -> LabelToken {
        switch try field(key) {
        case .string(let s): return LabelToken(text: s)
        case .number(let literal): return LabelToken(text: literal, isNumber: true)
        case let other: throw PETLError("\(file.path):\(line): field '\(shown(key))' is \(other.typeName), not a string or a number")
        }
      }
      let textA = try text(layout.textA), textB = try layout.textB.map(text), label = try token(layout.label)
      let id = try layout.id.map { try checkedID(token($0).className, path: file.path, line: line) }
      try body(TableRow(line: line, textA: textA, textB: textB, label: label, id: id))
    }
  }

  /// One line of a JSON Lines file, parsed; an object (the rows' only shape).
  private static func object(_ file: DelimitedText, line: Int, _ field: Range<Int>) throws -> JSONValue {
    let raw = file.raw(field)
    guard raw.contains(where: { ![0x20, 0x09, 0x0D].contains($0) }) else {
      throw PETLError("\(file.path):\(line): empty line (JSON Lines holds one object per line)")
    }
    let value: JSONValue
    do { value = try JSONValue.parse(line: Array(raw)) } catch let error as PETLError {
      throw PETLError("\(file.path):\(line): invalid JSON (\(error.message))")
    }
    guard case .object = value else {
      throw PETLError("\(file.path):\(line): expected a JSON object, found \(value.typeName)")
    }
    return value
  }

  /// `predict --output` writes ids into a TSV: one that holds a tab or a line break would break its row.
  private static func checkedID(_ id: String, path: String, line: Int) throws -> String {
    guard !id.contains(where: { $0 == "\t" || $0.isNewline }) else {
      throw PETLError("\(path):\(line): id holds a tab or a line break (predict --output writes ids into a TSV)")
    }
    return id
  }
}

/// Field positions of the columns a layout needs, found in a header.
private struct ColumnIndices {
  let count: Int
  let textA: Int
  let textB: Int?
  let label: Int
  let id: Int?

  init(header names: [String], layout: ColumnLayout, path: String, line: Int) throws {
    func find(_ name: String) throws -> Int {
      guard let i = names.firstIndex(of: name) else {
        throw PETLError("\(path):\(line): header has no column '\(shown(name))' (found: \(shown(names.joined(separator: ", "), limit: 120)))")
      }
      return i
    }
    count = names.count
    textA = try find(layout.textA)
    textB = try layout.textB.map(find)
    label = try find(layout.label)
    id = try layout.id.map(find)
  }
}

/// A task's labels as `Example.label` holds them: the class index of a class name, or a regression
/// task's score.
struct LabelReader {
  let task: TaskDescriptor
  private let classIndex: [String: Int]

  init(task: TaskDescriptor) {
    self.task = task
    classIndex = Dictionary(uniqueKeysWithValues: task.labelNames.enumerated().map { ($1, $0) })
  }

  func value(_ token: LabelToken, at path: String, line: Int) throws -> Float {
    if task.isRegression {
      guard let score = Float(token.text), score.isFinite else {
        throw PETLError("\(path):\(line): score \(token.quoted) is not a finite number")
      }
      return score
    }
    guard let k = classIndex[token.className] else {
      throw PETLError("\(path):\(line): unknown label \(token.quoted) "
                        + "(expected one of: \(shown(task.labelNames.joined(separator: ", "), limit: 120)))")
    }
    return Float(k)
  }
}

import Foundation

/// The grid's results journal: one JSON line per finished cell, append-only, so a grid can stop at any
/// moment (time limit, crash, preemption) and resume by skipping what is already there.
///
/// Durability: each record is one `write` of one complete line followed by `fsync`; only then does the
/// cell count as done. A crash can therefore leave at most a torn *last* line, which opening copies to
/// a new `<journal>.torn-<timestamp>[-N]` (fsynced, never overwriting an earlier one), cuts away and
/// reports in `notes`. Anything unreadable before the last line is not a crash artefact: opening then
/// throws and leaves the file untouched. An exclusive `flock` keeps a
/// second coordinator (say, a requeued job while the old one still drains) from writing the same file.
public final class Journal {
  public let url: URL
  public private(set) var records: [JournalRecord] = []
  /// What opening did that the user should know (a torn last line set aside), one line each.
  public private(set) var notes: [String] = []
  private let fd: Int32
  private let sync: (Int32) -> Int32

  /// Opens (creating it and its folder if needed) the journal at `url` and reads every record.
  /// `sync` is the flush-to-disk call (`fsync`), replaceable so tests can make it fail.
  public init(url: URL, sync: @escaping (Int32) -> Int32 = { fsync($0) }) throws {
    self.url = url
    self.sync = sync
    let path = url.path
    let folder = url.deletingLastPathComponent()
    do {
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    } catch {
      throw PETLError("\(path): cannot create its folder: \(error.localizedDescription)")
    }
    let existed = FileManager.default.fileExists(atPath: path)
    fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw PETLError("\(path): cannot open journal: \(String(cString: strerror(errno)))") }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      close(fd)
      throw PETLError("\(path): journal is in use by another running grid (flock held)")
    }
    do {
      if !existed { try syncFolder(folder) }
      try load()
    } catch {
      close(fd)
      throw error
    }
  }

  deinit { close(fd) }

  /// Which cells the journal has done with `inputs` (by task; empty: any inputs count): hashes with
  /// an `ok` record of those inputs, with only `failed` ones, and with `ok` records of OTHER inputs
  /// only (`stale`: they run again), plus what differed, e.g. `rt-vader: data`.
  public func done(inputs: [String: CellInputs]) -> (ok: Set<String>, failed: Set<String>, stale: Set<String>, why: Set<String>) {
    var ok = Set<String>(), failed = Set<String>(), other = Set<String>(), why = Set<String>()
    for r in records {
      var current = true
      if let now = inputs[r.spec.task] {
        if let was = r.inputs {
          let diff = was.differences(from: now)
          if !diff.isEmpty { current = false; why.insert("\(r.spec.task): \(diff.joined(separator: ", "))") }
        } else {
          current = false; why.insert("\(r.spec.task): inputs not recorded (older journal)")
        }
      }
      switch (r.result.status, current) {
      case (.ok, true): ok.insert(r.specHash)
      case (.failed, true): failed.insert(r.specHash)
      case (.ok, false): other.insert(r.specHash)
      case (.failed, false): break
      }
    }
    return (ok, failed.subtracting(ok), other.subtracting(ok), why)
  }

  /// Appends one record as one line: a single `write`, then `fsync`. Throws (and keeps the record out
  /// of `records`) if either fails.
  public func append(_ record: JournalRecord) throws {
    var line = try Self.encoder.encode(record)
    line.append(UInt8(ascii: "\n"))
    let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == line.count else {
      let why = written < 0 ? String(cString: strerror(errno)) : "short write (\(written) of \(line.count) bytes)"
      throw PETLError("\(url.path): cannot append record: \(why)")
    }
    guard sync(fd) == 0 else {
      throw PETLError("\(url.path): fsync after append failed: \(String(cString: strerror(errno)))")
    }
    records.append(record)
  }

  /// NaN and infinities are legal values of a diverged cell's loss; JSON has no literal for them.
  static let encoder: JSONEncoder = {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return e
  }()

  static let decoder: JSONDecoder = {
    let d = JSONDecoder()
    d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return d
  }()

  private func load() throws {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw PETLError("\(url.path): cannot read journal: \(error.localizedDescription)")
    }
    let bytes = [UInt8](data)
    let newline = UInt8(ascii: "\n")
    var lines: [(start: Int, end: Int)] = []     // end excludes the newline
    var start = 0
    for (i, b) in bytes.enumerated() where b == newline {
      lines.append((start, i)); start = i + 1
    }
    let unterminated = start < bytes.count ? (start: start, end: bytes.count) : nil
    var parsed: [JournalRecord] = []
    for (index, line) in lines.enumerated() {
      let slice = bytes[line.start..<line.end]
      if slice.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) { continue }
      do {
        parsed.append(try Self.decoder.decode(JournalRecord.self, from: Data(slice)))
      } catch {
        if index == lines.count - 1 && unterminated == nil {
          // A complete but unreadable last line: also the trace of an interrupted write.
          try setAside(from: line.start, bytes: bytes)
          records = parsed
          return
        }
        throw PETLError("\(url.path):\(index + 1): unreadable journal record (\(Self.brief(error))); "
          + "the file was left untouched, repair or move it")
      }
    }
    if let tail = unterminated {
      let slice = bytes[tail.start..<tail.end]
      if let record = try? Self.decoder.decode(JournalRecord.self, from: Data(slice)) {
        // Complete record whose newline is missing (edited by hand): keep it, end the line.
        parsed.append(record)
        try appendRaw([newline])
      } else {
        try setAside(from: tail.start, bytes: bytes)
      }
    }
    records = parsed
  }

  /// Copies bytes[offset...] to a new `<journal>.torn-<timestamp>[-N]` (created exclusively, so an
  /// earlier one is never overwritten, and fsynced with its folder), then truncates the journal to
  /// `offset` and says so in `notes`.
  private func setAside(from offset: Int, bytes: [UInt8]) throws {
    let stamp = JournalRecord.timestamp(Date()).replacingOccurrences(of: ":", with: "")
    var aside = url.path + ".torn-" + stamp
    var afd = open(aside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    var n = 1
    while afd < 0 && errno == EEXIST && n < 1000 {
      aside = url.path + ".torn-" + stamp + "-\(n)"; n += 1
      afd = open(aside, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    }
    guard afd >= 0 else {
      throw PETLError("\(aside): cannot save the torn last line of the journal: \(String(cString: strerror(errno)))")
    }
    let tail = Array(bytes[offset...])
    let written = tail.withUnsafeBytes { write(afd, $0.baseAddress, $0.count) }
    let synced = sync(afd) == 0
    close(afd)
    guard written == tail.count, synced else {
      throw PETLError("\(aside): cannot save the torn last line of the journal: \(String(cString: strerror(errno)))")
    }
    try syncFolder(url.deletingLastPathComponent())
    guard ftruncate(fd, off_t(offset)) == 0, sync(fd) == 0 else {
      throw PETLError("\(url.path): cannot cut the torn last line: \(String(cString: strerror(errno)))")
    }
    notes.append("\(url.path): the last line (\(tail.count) bytes) was not a complete record (an interrupted write?): "
      + "moved to \(aside)")
  }

  private func appendRaw(_ bytes: [UInt8]) throws {
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count, sync(fd) == 0 else {
      throw PETLError("\(url.path): cannot write: \(String(cString: strerror(errno)))")
    }
  }

  /// A new file's directory entry is durable only once the folder itself is synced.
  private func syncFolder(_ folder: URL) throws {
    let dfd = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard dfd >= 0 else { throw PETLError("\(folder.path): cannot open folder to sync it") }
    defer { close(dfd) }
    _ = fsync(dfd)
  }

  /// The decoding error as a short phrase (Foundation's descriptions span lines).
  private static func brief(_ error: Error) -> String {
    switch error {
    case DecodingError.dataCorrupted(let c): return "not JSON: \(c.debugDescription)".replacingOccurrences(of: "\n", with: " ")
    case DecodingError.keyNotFound(let key, _): return "missing key '\(key.stringValue)'"
    case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
      return "bad value at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
    default: return "\(error)".replacingOccurrences(of: "\n", with: " ")
    }
  }
}

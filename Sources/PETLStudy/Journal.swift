import Foundation
import PETLTraining
import PETLSupport

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
      // A record whose spec_hash is not its spec's claims another cell: it counts for neither.
      guard r.specHash == r.spec.hash else {
        why.insert("\(r.spec.task): a record's spec_hash \(shown(r.specHash, limit: 24)) is not the hash of its spec (ignored)")
        continue
      }
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
    var line = try RecordCodec.encoder.encode(record)
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

  private func load() throws {
    let bytes = try JournalLines.read(url)
    let parsed = JournalLines(bytes)
    var records: [JournalRecord] = []
    for (i, line) in parsed.lines.enumerated() {
      switch line.record {
      case .success(let record):
        records.append(record)
        // A complete record whose newline is missing (edited by hand): keep it, end the line.
        if !line.terminated { try appendRaw([UInt8(ascii: "\n")]) }
      case .failure(let error):
        guard i == parsed.lines.count - 1 else {
          throw PETLError("\(url.path):\(line.number): unreadable journal record (\(oneLine(error))); "
            + "the file was left untouched, repair or move it")
        }
        // An unreadable last line: the trace of an interrupted write.
        try setAside(from: line.start, bytes: bytes)
      }
    }
    self.records = records
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
}

/// A journal file as lines, each with the record it parses to (or why not): the one reader of journal
/// files. The grid's `Journal` repairs a torn last line; the report refuses any unreadable one.
struct JournalLines {
  struct Line {
    /// 1-based line number in the file.
    let number: Int
    /// Byte offset where the line starts.
    let start: Int
    /// Ends in a newline (false: the file's unterminated tail).
    let terminated: Bool
    let record: Result<JournalRecord, Error>
  }

  /// The non-blank lines, in file order.
  let lines: [Line]

  init(_ bytes: [UInt8]) {
    var lines: [Line] = []
    var start = 0, number = 1
    func add(_ end: Int, terminated: Bool) {
      let slice = bytes[start..<end]
      if !slice.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) {
        lines.append(Line(number: number, start: start, terminated: terminated,
                          record: Result { try RecordCodec.decoder.decode(JournalRecord.self, from: Data(slice)) }))
      }
    }
    for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") {
      add(i, terminated: true)
      start = i + 1; number += 1
    }
    if start < bytes.count { add(bytes.count, terminated: false) }
    self.lines = lines
  }

  static func read(_ url: URL) throws -> [UInt8] {
    do { return [UInt8](try Data(contentsOf: url)) } catch {
      throw PETLError("\(url.path): cannot read journal: \(error.localizedDescription)")
    }
  }
}

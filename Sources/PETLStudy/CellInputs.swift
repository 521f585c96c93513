import Foundation
import PETLKernels
import PETLModel
import PETLData
import PETLSupport

/// What a cell read, by content: the same spec on other data, other weights or another engine is a
/// different result. A journal record counts for a cell only when its inputs equal the current ones;
/// `report` never pools records whose inputs differ.
public struct CellInputs: Codable, Hashable, Sendable {
  /// Fingerprint of the task's files (names and contents of what the readers open).
  public var data: String
  /// Fingerprint of the model folder's files the engine reads (config, vocabulary, weights).
  public var model: String
  /// `Engine.numericsVersion` of the program that trained the cell.
  public var engine: Int
  /// The precision of the GEMMs (fp32 for records written before it was recorded).
  public var precision: Precision

  public init(data: String, model: String, engine: Int = Engine.numericsVersion, precision: Precision = .fp32) {
    self.data = data; self.model = model; self.engine = engine; self.precision = precision
  }

  enum CodingKeys: String, CodingKey { case data, model, engine, precision }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    data = try c.decode(String.self, forKey: .data)
    model = try c.decode(String.self, forKey: .model)
    engine = try c.decode(Int.self, forKey: .engine)
    precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
  }

  /// `precision` only when bf16: fp32 records read and write as before it existed.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(data, forKey: .data)
    try c.encode(model, forKey: .model)
    try c.encode(engine, forKey: .engine)
    if precision != .fp32 { try c.encode(precision, forKey: .precision) }
  }

  /// What differs between `self` (a record's) and `current`, e.g. `data`, `model weights`.
  public func differences(from current: CellInputs) -> [String] {
    var out: [String] = []
    if data != current.data { out.append("data") }
    if model != current.model { out.append("model") }
    if engine != current.engine { out.append("engine numerics v\(engine) -> v\(current.engine)") }
    if precision != current.precision { out.append("precision \(precision) -> \(current.precision)") }
    return out
  }

  /// The current inputs of each task: its data files and the model folder, fingerprinted. A user
  /// task's data is its train and dev files and `task.json` by file name and content, not by folder:
  /// the same rows in another folder under the same task name are the same inputs (its cells resume),
  /// and an edited row, label set or metric is another (its cells run again).
  public static func current(tasks: [String], catalog: TaskCatalog = TaskCatalog(), modelDirectory: URL, dataDirectory: URL,
                             fingerprints: FileFingerprints, precision: Precision = .fp32) throws -> [String: CellInputs] {
    let model = try fingerprints.combined(PretrainedFiles.read(by: modelDirectory))
    var out: [String: CellInputs] = [:]
    for name in Set(tasks) {
      let task = try catalog.named(name)
      out[name] = CellInputs(data: try fingerprints.combined(task.inputFiles(dataDirectory: dataDirectory)), model: model,
                             precision: precision)
    }
    return out
  }
}

/// The files of a model folder that the engine reads.
public enum PretrainedFiles {
  public static func read(by directory: URL) -> [URL] {
    ["config.json", "vocab.txt", "tokenizer_config.json", "vocab.json", "merges.txt", "tokenizer.json", "model.safetensors"]
      .map { directory.appendingPathComponent($0) }
      .filter { FileManager.default.fileExists(atPath: $0.path) }
  }
}

/// Content fingerprints of files, cached by (path, size, modification time, inode) in a JSON file so
/// that a large checkpoint is hashed once, not at every start. The hash is for identity, not security:
/// four interleaved 64-bit multiply-xor lanes over the file's words, mixed with its length.
public final class FileFingerprints {
  private let cacheURL: URL?
  private var cache: [String: String] = [:]
  private var dirty = false

  /// `cacheURL` nil: no cache (every file is hashed).
  public init(cacheURL: URL?) {
    self.cacheURL = cacheURL
    if let cacheURL, let data = try? Data(contentsOf: cacheURL),
       let decoded = try? JSONDecoder().decode([String: String].self, from: data) {
      cache = decoded
    }
  }

  /// The default cache: `$XDG_CACHE_HOME/swift-petl/fingerprints.json`, else `~/.cache/...`.
  public static func userCache() -> FileFingerprints {
    let env = ProcessInfo.processInfo.environment
    let base = env["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
      ?? env["HOME"].map { URL(fileURLWithPath: $0).appendingPathComponent(".cache") }
    return FileFingerprints(cacheURL: base?.appendingPathComponent("swift-petl/fingerprints.json"))
  }

  /// One fingerprint over several files: their names (last path component) and contents, in order.
  public func combined(_ urls: [URL]) throws -> String {
    var text = ""
    for url in urls { text += url.lastPathComponent + ":" + (try fingerprint(url)) + ";" }
    try save()
    return fnv1a64Hex(text)
  }

  /// The content fingerprint of one file (16 hex digits).
  public func fingerprint(_ url: URL) throws -> String {
    let path = url.standardizedFileURL.path
    var st = stat()
    guard stat(path, &st) == 0 else {
      throw PETLError("\(path): cannot read (\(String(cString: strerror(errno))))")
    }
    let key = "\(path)|\(st.st_size)|\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)|\(st.st_ino)"
    if let hit = cache[key] { return hit }
    let data: Data
    do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
      throw PETLError("\(path): cannot read (\(error.localizedDescription))")
    }
    let value = Self.hash(data)
    cache = cache.filter { !$0.key.hasPrefix(path + "|") }
    cache[key] = value
    dirty = true
    return value
  }

  /// Writes the cache (atomically: ranks of one job may share it); a cache that cannot be written
  /// only costs the hashing again next time.
  private func save() throws {
    guard dirty, let cacheURL else { return }
    dirty = false
    try? FileManager.default.createDirectory(at: cacheURL.deletingLastPathComponent(), withIntermediateDirectories: true)
    if let data = try? JSONEncoder().encode(cache) { try? data.write(to: cacheURL, options: .atomic) }
  }

  /// 64-bit content hash as 16 hex digits.
  public static func hash(_ data: Data) -> String {
    let p1: UInt64 = 0x9E37_79B1_85EB_CA87, p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    var h: (UInt64, UInt64, UInt64, UInt64) = (p1, p2, ~p1, ~p2)
    let n = data.count
    data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
      var i = 0
      @inline(__always) func lane(_ h: inout UInt64, _ w: UInt64) {
        h = (h ^ w) &* p1
        h ^= h >> 29
      }
      while i + 32 <= n {
        lane(&h.0, raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
        lane(&h.1, raw.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
        lane(&h.2, raw.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
        lane(&h.3, raw.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
        i += 32
      }
      var tail: UInt64 = 0
      var shift: UInt64 = 0
      while i < n {
        tail |= UInt64(raw[i]) << shift
        shift += 8
        if shift == 64 { lane(&h.0, tail); tail = 0; shift = 0 }
        i += 1
      }
      lane(&h.1, tail)
    }
    var x = h.0 ^ (h.1 &* p2) ^ (h.2 &* p1 &* p2) ^ (h.3 &* p2 &* p2) ^ UInt64(n)
    x ^= x >> 33; x = x &* p2; x ^= x >> 29; x = x &* p1; x ^= x >> 32
    let hex = String(x, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
  }
}

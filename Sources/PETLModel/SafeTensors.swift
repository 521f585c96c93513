import Foundation
import PETLSupport

/// A safetensors file opened for reading: `u64 little-endian header length | JSON header | data`.
///
/// The file is memory-mapped, not read: every rank opens the model, and mapped pages of the same
/// file are shared between processes by the page cache. Everything in the header is checked at `open`
/// (the same rules as the Rust reference library: the tensors tile the data section exactly, in
/// order, each with `product(shape) * dtype size` bytes), so later reads cannot go out of bounds.
/// Values are stored little-endian, as on every machine we run on.
public struct SafeTensors: Sendable {
  /// Element type and shape of one tensor.
  public struct TensorInfo: Sendable, Equatable {
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Element count, `product(shape)` (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
  }

  public let url: URL
  /// The header's `__metadata__` (string to string), empty when absent.
  public let metadata: [String: String]
  /// Tensor names in the order their bytes appear in the file.
  public let names: [String]

  private let data: Data
  /// Offset of the data section in `data` (8 + header length).
  private let dataStart: Int
  private let entries: [String: Entry]

  struct Entry: Sendable {
    let info: TensorInfo
    /// Byte range relative to the start of the data section.
    let begin: Int
    let end: Int
  }

  /// Guards against a hostile length making us decode gigabytes of "JSON" (the Rust library uses 100 MB).
  static let maxHeaderBytes = 100_000_000

  public static func open(_ url: URL) throws -> SafeTensors {
    let path = url.path
    let data: Data
    do {
      data = try Data(contentsOf: url, options: .alwaysMapped)
    } catch {
      throw PETLError("\(path): cannot read file (\(error.localizedDescription))")
    }
    guard data.count >= 8 else {
      throw PETLError("\(path): truncated: \(data.count) bytes, shorter than the 8-byte header length")
    }
    let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    guard headerLength <= UInt64(data.count - 8) else {
      throw PETLError("\(path): header length \(headerLength) runs past the end of the file (\(data.count) bytes)")
    }
    guard headerLength <= UInt64(maxHeaderBytes) else {
      throw PETLError("\(path): header length \(headerLength) exceeds the \(maxHeaderBytes)-byte limit")
    }
    let dataStart = 8 + Int(headerLength)
    let header = try SafeTensorsHeader.decode(data[8..<dataStart], path: path)

    let dataSize = data.count - dataStart
    var entries: [String: Entry] = [:]
    for (name, raw) in header.tensors {
      guard let dtype = SafeTensorsDType(rawValue: raw.dtype) else {
        throw PETLError("\(path): tensor '\(shown(name))' has unknown dtype '\(shown(raw.dtype))'")
      }
      guard raw.dataOffsets.count == 2 else {
        throw PETLError("\(path): tensor '\(shown(name))' data_offsets must be [begin, end], got \(shown("\(raw.dataOffsets)"))")
      }
      let (begin, end) = (raw.dataOffsets[0], raw.dataOffsets[1])
      guard begin >= 0, begin <= end else {
        throw PETLError("\(path): tensor '\(shown(name))' has data_offsets [\(begin), \(end)] out of order")
      }
      guard end <= dataSize else {
        throw PETLError("\(path): tensor '\(shown(name))' data_offsets [\(begin), \(end)] run past the data section (\(dataSize) bytes)")
      }
      var count = 1
      for d in raw.shape {
        let (product, overflow) = count.multipliedReportingOverflow(by: d)
        guard d >= 0, !overflow else {
          throw PETLError("\(path): tensor '\(shown(name))' has invalid shape \(shown("\(raw.shape)"))")
        }
        count = product
      }
      let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
      guard !overflow, bytes == end - begin else {
        throw PETLError("\(path): tensor '\(shown(name))' holds \(end - begin) bytes but shape \(shown("\(raw.shape)")) of \(dtype.rawValue) needs \(overflow ? "more" : String(bytes))")
      }
      entries[name] = Entry(info: TensorInfo(dtype: dtype, shape: raw.shape), begin: begin, end: end)
    }

    // The tensors must tile the data section: no overlap, no hole, nothing after the last one.
    let ordered = entries.sorted { ($0.value.begin, $0.value.end, $0.key) < ($1.value.begin, $1.value.end, $1.key) }
    var cursor = 0
    var previous = "the data section start"
    for (name, entry) in ordered {
      if entry.begin < cursor {
        throw PETLError("\(path): tensor '\(shown(name))' at byte \(entry.begin) overlaps \(previous) (ends at \(cursor))")
      }
      if entry.begin > cursor {
        throw PETLError("\(path): \(entry.begin - cursor) unused bytes before tensor '\(shown(name))' at byte \(entry.begin)")
      }
      cursor = entry.end
      previous = "tensor '\(shown(name))'"
    }
    guard cursor == dataSize else {
      throw PETLError("\(path): \(dataSize - cursor) bytes after the last tensor are not described by the header")
    }
    return SafeTensors(url: url, metadata: header.metadata, names: ordered.map(\.key),
                       data: data, dataStart: dataStart, entries: entries)
  }

  public func info(_ name: String) -> TensorInfo? { entries[name]?.info }

  /// The tensor's values as Float: F32 copied, F16 and BF16 widened exactly, F64 rounded.
  public func floats(_ name: String) throws -> [Float] {
    let entry = try floatEntry(name)
    return try [Float](unsafeUninitializedCapacity: entry.info.count) { buffer, initialized in
      try copyFloats(name, into: buffer)
      initialized = entry.info.count
    }
  }

  /// Writes the tensor's values into `into`, whose count must equal the tensor's element count: lets
  /// the model load straight into its parameter slab without a temporary array.
  public func copyFloats(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws {
    let entry = try floatEntry(name)
    let count = entry.info.count
    guard destination.count == count else {
      throw PETLError("\(url.path): tensor '\(shown(name))' has \(count) values, destination holds \(destination.count)")
    }
    guard count > 0, let out = destination.baseAddress else { return }
    data.withUnsafeBytes { file in
      let src = UnsafeRawBufferPointer(rebasing: file[(dataStart + entry.begin)..<(dataStart + entry.end)])
      switch entry.info.dtype {
      case .f32:
        // Offsets need not be 4-byte aligned, so copy bytes rather than bind memory.
        UnsafeMutableRawPointer(out).copyMemory(from: src.baseAddress!, byteCount: src.count)
      case .f16:
        for i in 0..<count {
          out[i] = floatFromHalfBits(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
      case .bf16:
        for i in 0..<count {
          out[i] = floatFromBFloat16Bits(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
      case .f64:
        for i in 0..<count {
          out[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
        }
      default:
        preconditionFailure("floatEntry admits only float dtypes")
      }
    }
  }

  /// The tensor's values as Int64, for I64, I32, I16, I8 and U8 tensors (e.g. `position_ids`).
  public func integers(_ name: String) throws -> [Int64] {
    let entry = try self.entry(name)
    guard entry.info.dtype.isInteger else {
      throw PETLError("\(url.path): tensor '\(shown(name))' is \(entry.info.dtype.rawValue), not an integer type (I64, I32, I16, I8, U8)")
    }
    let count = entry.info.count
    return data.withUnsafeBytes { file in
      let src = UnsafeRawBufferPointer(rebasing: file[(dataStart + entry.begin)..<(dataStart + entry.end)])
      return (0..<count).map { i -> Int64 in
        switch entry.info.dtype {
        case .i64: return Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
        case .i32: return Int64(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
        case .i16: return Int64(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
        case .i8: return Int64(src.load(fromByteOffset: i, as: Int8.self))
        case .u8: return Int64(src[i])
        default: preconditionFailure("isInteger admits only the cases above")
        }
      }
    }
  }

  private func entry(_ name: String) throws -> Entry {
    guard let entry = entries[name] else { throw PETLError("\(url.path): no tensor named '\(shown(name))'") }
    return entry
  }

  private func floatEntry(_ name: String) throws -> Entry {
    let entry = try self.entry(name)
    guard entry.info.dtype.isFloat else {
      throw PETLError("\(url.path): tensor '\(shown(name))' is \(entry.info.dtype.rawValue), not a float type (F32, F16, BF16, F64)")
    }
    return entry
  }
}

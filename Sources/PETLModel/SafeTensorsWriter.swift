import Foundation
import PETLSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SafeTensors {
  /// Writes F32 tensors, in the given order, to a safetensors file that the Python and Rust libraries
  /// read. The header is padded with spaces to a multiple of 8 bytes (as the Rust library does) so the
  /// data section is 8-byte aligned. The write is atomic: a temporary file in the same folder is
  /// written, fsynced and renamed over `url`, so a crash never leaves a torn checkpoint behind.
  public static func write(
    to url: URL, tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
    metadata: [String: String]
  ) throws {
    let path = url.path
    var header: [String: Any] = [:]
    var offset = 0
    for tensor in tensors {
      guard tensor.name != SafeTensorsHeader.metadataKey, header[tensor.name] == nil else {
        throw PETLError("\(path): tensor name '\(tensor.name)' is reserved or repeated")
      }
      guard tensor.shape.allSatisfy({ $0 >= 0 }), tensor.shape.reduce(1, *) == tensor.values.count else {
        throw PETLError("\(path): tensor '\(tensor.name)' has \(tensor.values.count) values, shape \(tensor.shape) needs \(tensor.shape.reduce(1, *))")
      }
      let bytes = tensor.values.count * MemoryLayout<Float>.size
      header[tensor.name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
      offset += bytes
    }
    if !metadata.isEmpty { header[SafeTensorsHeader.metadataKey] = metadata }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes])
    json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))

    let folder = url.deletingLastPathComponent()
    let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
    let fd = createFile(temporary.path)
    guard fd >= 0 else { throw PETLError("\(path): cannot create \(temporary.path) (\(errnoText()))") }
    do {
      defer { close(fd) }
      var length = UInt64(json.count).littleEndian
      try withUnsafeBytes(of: &length) { try writeAll(fd, $0, path: path) }
      try json.withUnsafeBytes { try writeAll(fd, $0, path: path) }
      for tensor in tensors { try writeAll(fd, UnsafeRawBufferPointer(tensor.values), path: path) }
      guard fsync(fd) == 0 else { throw PETLError("\(path): fsync failed (\(errnoText()))") }
    } catch {
      unlink(temporary.path)
      throw error
    }
    guard rename(temporary.path, path) == 0 else {
      let reason = errnoText()
      unlink(temporary.path)
      throw PETLError("\(path): cannot rename the temporary file into place (\(reason))")
    }
    // Make the rename itself durable.
    try syncFolder(folder)
  }
}

private func createFile(_ path: String) -> Int32 { open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }

private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
  var done = 0
  while done < bytes.count {
    let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
    if n < 0 {
      if errno == EINTR { continue }
      throw PETLError("\(path): write failed (\(errnoText()))")
    }
    done += n
  }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

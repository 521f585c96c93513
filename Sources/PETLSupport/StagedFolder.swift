import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A folder written in full before it appears under its name: the files go into a hidden sibling
/// (`.NAME.partial-PID`), which `commit` syncs and renames onto the destination. So a failure or a
/// kill part-way never leaves a folder that looks complete under NAME, and an existing folder with
/// files in it is never written into or replaced.
public struct StagedFolder {
  public let destination: URL
  /// Where the files go until `commit`.
  public let staging: URL
  private let flag: String

  /// Checks that `destination` is free (absent or an empty folder), creates its parents and the
  /// staging folder. `flag` names the option in errors.
  public init(destination: URL, flag: String) throws {
    let fm = FileManager.default
    let path = destination.path
    var isFolder: ObjCBool = false
    if fm.fileExists(atPath: path, isDirectory: &isFolder) {
      guard isFolder.boolValue else { throw PETLError("\(flag) \(path): exists and is not a folder") }
      let entries = (try? fm.contentsOfDirectory(atPath: path)) ?? ["?"]
      guard entries.isEmpty else { throw PETLError("\(flag) \(path): exists and is not empty (choose a new folder)") }
    }
    let parent = destination.deletingLastPathComponent()
    do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
      throw PETLError("\(flag) \(path): cannot create \(parent.path) (\(error.localizedDescription))")
    }
    self.destination = destination
    self.flag = flag
    self.staging = parent.appendingPathComponent(".\(destination.lastPathComponent).partial-\(getpid())")
    try? fm.removeItem(at: staging)  // left by a killed run of a process with our id
    guard mkdir(staging.path, 0o755) == 0 else {
      throw PETLError("\(flag) \(path): cannot create \(staging.path) (\(String(cString: strerror(errno))))")
    }
  }

  /// Syncs the staged files and the staging folder, then renames it onto the destination (an empty
  /// folder there is replaced; one that gained files meanwhile is not) and syncs the parent.
  public func commit() throws {
    let fm = FileManager.default
    for name in try fm.contentsOfDirectory(atPath: staging.path) {
      try syncPath(staging.appendingPathComponent(name))
    }
    try syncFolder(staging)
    guard rename(staging.path, destination.path) == 0 else {
      let reason = String(cString: strerror(errno))
      throw PETLError("\(flag) \(destination.path): cannot move the finished folder into place (\(reason))")
    }
    try syncFolder(destination.deletingLastPathComponent())
  }

  /// Removes the staging folder and everything in it (after a failure).
  public func discard() { try? FileManager.default.removeItem(at: staging) }

  /// fsync of a file, or recursively of a folder's files and the folder.
  private func syncPath(_ url: URL) throws {
    var isFolder: ObjCBool = false
    _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder)
    if isFolder.boolValue {
      for name in try FileManager.default.contentsOfDirectory(atPath: url.path) { try syncPath(url.appendingPathComponent(name)) }
      try syncFolder(url)
      return
    }
    let fd = open(url.path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw PETLError("\(url.path): cannot open to sync (\(String(cString: strerror(errno))))") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw PETLError("\(url.path): cannot sync (\(String(cString: strerror(errno))))") }
  }
}

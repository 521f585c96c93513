import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Makes a folder's entries durable: a new file's name, or a rename into the folder, survives a crash
/// only once the folder itself is synced (the journal, adapters, checkpoints written atomically).
public func syncFolder(_ folder: URL) throws {
  let dfd = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
  guard dfd >= 0 else { throw PETLError("\(folder.path): cannot open folder to sync it") }
  defer { close(dfd) }
  guard fsync(dfd) == 0 else { throw PETLError("\(folder.path): cannot sync the folder (\(String(cString: strerror(errno))))") }
}

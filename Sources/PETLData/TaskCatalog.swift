import Foundation
import PETLSupport

/// The tasks one run knows: the built-in ones and the user's, resolved from the folders its flags
/// name. A cell spec names its task by name only (so the same rows in another folder are the same
/// cells); whatever later looks a task up by that name (the trainer, the journal's fingerprints, the
/// planner) asks the catalog the flags were resolved into. Every rank of a grid parses the same flags,
/// so every rank builds the same catalog.
public struct TaskCatalog: Sendable {
  /// The user's tasks resolved so far, in the order given.
  public private(set) var userTasks: [TaskDescriptor] = []

  public init() {}

  /// The task called `name`: a user task resolved into this catalog, else a built-in one.
  public func named(_ name: String) throws -> TaskDescriptor {
    if let task = userTasks.first(where: { $0.name == name }) { return task }
    return try TaskDescriptor.named(name)
  }

  /// Resolves a `--task` / `--tasks` argument: a built-in task's name, or the path of a task folder
  /// (`TaskDescriptor.userTask(folder:)`). A bare word that is a built-in name means the built-in task
  /// even when a folder of that name exists (`./rte` names the folder). The same folder twice is one
  /// task; two folders whose tasks share a name are an error, as the journal could not tell their
  /// cells apart.
  @discardableResult
  public mutating func resolve(_ argument: String, flag: String) throws -> TaskDescriptor {
    if let builtIn = TaskDescriptor.all.first(where: { $0.name == argument }) { return builtIn }
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: argument, isDirectory: &isFolder), isFolder.boolValue else {
      throw PETLError("\(flag) \(argument): no such task (built in: \(TaskDescriptor.all.map(\.name).joined(separator: ", ")); "
                        + "or the path of a folder with train and dev files)")
    }
    let task = try TaskDescriptor.userTask(folder: URL(fileURLWithPath: argument))
    if let known = userTasks.first(where: { $0.name.lowercased() == task.name.lowercased() }) {
      guard known == task else {
        throw PETLError("\(flag): \(known.folder) and \(task.folder) both hold a task named '\(shown(task.name))' "
                          + "(letter case aside); set another task.json \"name\" in one")
      }
      return known
    }
    userTasks.append(task)
    return task
  }
}

/// The one error type the library throws for bad input: a single line that names the file, flag or
/// value at fault. The CLI prints `error: <message>` and exits non-zero; nothing traps.
public struct PETLError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

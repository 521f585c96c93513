import Foundation
import PETLSupport

/// Test hook: `SWIFT_PETL_FAULT=POINT@RANK` makes world rank RANK of a grid fail on purpose, so the
/// tests can prove that every failure ends the job within seconds instead of hanging it. POINT is
/// `startup` (an error after MPI start-up, before the first collective), `cell` (the cell's runner
/// throws on that rank, e.g. a follower inside a data-parallel group) or `hang` (the runner never
/// returns on that rank: the watchdog must end the job). Unset: nothing happens.
struct FaultInjection {
  static let variable = "SWIFT_PETL_FAULT"
  enum Point: String { case startup, cell, hang }
  let point: Point
  let rank: Int

  static func fromEnvironment() throws -> FaultInjection? {
    guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else { return nil }
    let parts = text.split(separator: "@").map(String.init)
    guard parts.count == 2, let point = Point(rawValue: parts[0]), let rank = Int(parts[1]), rank >= 0 else {
      throw PETLError("\(variable)='\(text)': expected startup@RANK, cell@RANK or hang@RANK")
    }
    return FaultInjection(point: point, rank: rank)
  }

  func fire(at point: Point, worldRank: Int) throws {
    guard point == self.point, worldRank == rank else { return }
    switch point {
    case .startup, .cell: throw PETLError("injected fault (\(Self.variable)=\(point.rawValue)@\(rank))")
    case .hang: while true { sleep(60) }
    }
  }
}

import XCTest
@testable import PETL

final class CommunicatorTests: XCTestCase {
  // MARK: in-process, as an MPI singleton

  func testSingletonWorldExchangesWithItself() throws {
    let world = try Communicator.world()
    XCTAssertEqual(world.size, 1)
    XCTAssertEqual(world.rank, 0)
    var x: [Float] = (0..<10).map(Float.init)
    x.withUnsafeMutableBufferPointer { world.allreduceSum($0.baseAddress!, count: 10, chunkElements: 3) }
    XCTAssertEqual(x, (0..<10).map(Float.init))
    XCTAssertEqual(world.allreduceSum(2.5), 2.5)
    var bytes: [UInt8] = [1, 2, 3]
    world.broadcast(bytes: &bytes, root: 0)
    XCTAssertEqual(bytes, [1, 2, 3])
    world.send([9, 8], to: 0, tag: 5)
    let m = world.receive(from: 0, tag: 5)
    XCTAssertEqual(m.bytes, [9, 8])
    XCTAssertEqual(m.source, 0)
    XCTAssertNil(world.tryReceive(tag: 5))
    let group = try world.split(color: 0, key: 0)
    XCTAssertEqual(group.size, 1)
    group.barrier()
  }

  func testLaunchChecksCatchSrunWithoutPMIAndStaleWorldSizes() throws {
    let srun = ["SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_ID": "0"]
    XCTAssertThrowsError(try LaunchCheck.beforeInit(environment: srun)) {
      XCTAssertTrue("\($0)".contains("srun --mpi=pmix"), "\($0)")
    }
    XCTAssertNoThrow(try LaunchCheck.beforeInit(environment: srun.merging(["PMIX_RANK": "1"]) { $1 }))
    XCTAssertNoThrow(try LaunchCheck.beforeInit(environment: ["SLURM_PROCID": "0", "SLURM_NTASKS": "2"]),
                     "the batch shell itself is not an srun step")
    XCTAssertThrowsError(try LaunchCheck.afterInit(environment: ["OMPI_COMM_WORLD_SIZE": "4"], mpiSize: 1))
    XCTAssertNoThrow(try LaunchCheck.afterInit(environment: ["OMPI_COMM_WORLD_SIZE": "4"], mpiSize: 4))
    XCTAssertThrowsError(try LaunchCheck.afterInit(environment: srun, mpiSize: 1))
    XCTAssertNoThrow(try LaunchCheck.afterInit(environment: srun, mpiSize: 2))
  }

  // MARK: the built binary under a real mpirun

  func testMPICheckPassesWithTwoRanks() throws {
    let run = try Self.launch(["mpirun", "-n", "2", Self.binary, "mpi-check", "--dp", "2"])
    XCTAssertEqual(run.status, 0, run.output)
    XCTAssertTrue(run.output.contains("world: 2 rank(s)"), run.output)
    XCTAssertTrue(run.output.contains("mpi-check: OK (2 rank(s), dp 2)"), run.output)
  }

  func testMPICheckPassesWithFourOversubscribedRanksInTwoGroups() throws {
    let run = try Self.launch(["mpirun", "-n", "4", "--oversubscribe", Self.binary, "mpi-check", "--dp", "2"])
    XCTAssertEqual(run.status, 0, run.output)
    XCTAssertTrue(run.output.contains("rank 3:"), run.output)
    XCTAssertTrue(run.output.contains("dp: 2 group(s) of 2 rank(s)"), run.output)
  }

  func testMPICheckFailsOnADpThatDoesNotDivideTheWorld() throws {
    let run = try Self.launch(["mpirun", "-n", "2", Self.binary, "mpi-check", "--dp", "3"])
    XCTAssertNotEqual(run.status, 0)
    XCTAssertTrue(run.output.contains("--dp 3 does not divide the world size 2"), run.output)
  }

  func testWorldSizeMismatchIsAOneLineError() throws {
    let stale = try Self.launch([Self.binary, "mpi-check"], extra: ["OMPI_COMM_WORLD_SIZE": "3"])
    XCTAssertNotEqual(stale.status, 0)
    XCTAssertTrue(stale.output.contains("MPI world has 1 rank(s) but OMPI_COMM_WORLD_SIZE says 3"), stale.output)
    let srun = try Self.launch([Self.binary, "mpi-check"], extra: [
      "SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_ID": "0"])
    XCTAssertNotEqual(srun.status, 0)
    XCTAssertTrue(srun.output.contains("srun without PMI"), srun.output)
    XCTAssertEqual(srun.output.split(separator: "\n").count, 1, srun.output)
  }

  /// `swift-petl`, built by `swift test` next to the test bundle (on Linux an executable, `.xctest`).
  static var binary: String {
    let bundle = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    return bundle.deletingLastPathComponent().appendingPathComponent("swift-petl").path
  }

  /// Runs `argv` (through PATH) with this process's environment minus every `OMPI_*`/`PMIX_*` variable
  /// (the singleton MPI of this test process set them; a child mpirun that inherits them fails
  /// silently) and with root allowed; returns the exit status and stdout+stderr.
  static func launch(_ argv: [String], extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
    guard FileManager.default.isExecutableFile(atPath: binary) else {
      XCTFail("\(binary) is missing: build with `swift build` (swift test builds it)")
      return (-1, "")
    }
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env.merge(extra) { $1 }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    p.environment = env
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
  }
}

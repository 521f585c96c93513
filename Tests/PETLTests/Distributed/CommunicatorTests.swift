import XCTest
@testable import PETLDistributed

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
    XCTAssertEqual(world.allgather(bytes: [7, 7, 7]), [[7, 7, 7]])
    XCTAssertEqual(world.allgather(bytes: []), [[]])
    XCTAssertEqual(world.hostNames(), [world.processorName])
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
    let run = try TestSupport.launch(["mpirun", "-n", "2", TestSupport.binary, "mpi-check", "--dp", "2"])
    XCTAssertEqual(run.status, 0, run.output)
    XCTAssertTrue(run.output.contains("world: 2 rank(s)"), run.output)
    XCTAssertTrue(run.output.contains("mpi-check: OK (2 rank(s), dp 2)"), run.output)
  }

  func testMPICheckPassesWithFourOversubscribedRanksInTwoGroups() throws {
    let run = try TestSupport.launch(["mpirun", "-n", "4", "--oversubscribe", TestSupport.binary, "mpi-check", "--dp", "2"])
    XCTAssertEqual(run.status, 0, run.output)
    XCTAssertTrue(run.output.contains("rank 3:"), run.output)
    XCTAssertTrue(run.output.contains("dp: 2 group(s) of 2 rank(s)"), run.output)
  }

  func testMPICheckFailsOnADpThatDoesNotDivideTheWorld() throws {
    let run = try TestSupport.launch(["mpirun", "-n", "2", TestSupport.binary, "mpi-check", "--dp", "3"])
    XCTAssertNotEqual(run.status, 0)
    XCTAssertTrue(run.output.contains("--dp 3 does not divide the world size 2"), run.output)
  }

  func testWorldSizeMismatchIsAOneLineError() throws {
    let stale = try TestSupport.launch([TestSupport.binary, "mpi-check"], extra: ["OMPI_COMM_WORLD_SIZE": "3"])
    XCTAssertNotEqual(stale.status, 0)
    XCTAssertTrue(stale.output.contains("MPI world has 1 rank(s) but OMPI_COMM_WORLD_SIZE says 3"), stale.output)
    let srun = try TestSupport.launch([TestSupport.binary, "mpi-check"], extra: [
      "SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_ID": "0"])
    XCTAssertNotEqual(srun.status, 0)
    XCTAssertTrue(srun.output.contains("srun without PMI"), srun.output)
    XCTAssertEqual(srun.output.split(separator: "\n").count, 1, srun.output)
  }
}

import XCTest
@testable import PETLKernels

/// Cost-balanced splits over the workers: every item exactly once. (Data-parallel shares:
/// Training/ShareTests.)
final class BalanceTests: XCTestCase {
  override func tearDown() { Parallel.workerOverride = nil }

  func testBalancedRangesCoverEveryItemOnce() {
    Parallel.workerOverride = 3
    for costs in [[Int](repeating: 5, count: 10), [100, 1, 1, 1, 1, 1, 1, 90], [0, 0, 7], [1]] {
      var seen = [Int](repeating: 0, count: costs.count)
      let lock = NSLock()
      Parallel.forBalanced(costs.count, minCost: 1, cost: { costs[$0] }) { _, range in
        lock.lock(); for i in range { seen[i] += 1 }; lock.unlock()
      }
      XCTAssertEqual(seen, [Int](repeating: 1, count: costs.count), "\(costs)")
    }
  }
}

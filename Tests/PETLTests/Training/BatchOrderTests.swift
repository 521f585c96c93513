import XCTest
@testable import PETLKernels
@testable import PETLTraining

/// Length bucketing: a permutation per epoch, the plain shuffle when off, batches of similar lengths
/// when on, only the last batch short, the same order for the same seed.
final class BatchOrderTests: XCTestCase {
  func testBucketingKeepsEveryExampleAndGroupsLengths() {
    var rng = SeededGenerator(seed: 9)
    let lengths = (0..<1003).map { _ in 4 + Int(rng.next() % 60) }
    let bs = 32
    func spread(_ order: [Int]) -> Double {
      var total = 0, batches = 0, i = 0
      while i < order.count {
        let b = order[i..<min(i + bs, order.count)].map { lengths[$0] }
        total += b.max()! - b.min()!; batches += 1; i += bs
      }
      return Double(total) / Double(batches)
    }
    for epoch in 1...3 {
      let plain = BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: true, seed: 5, epoch: epoch)
      let bucketed = BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: true, seed: 5, epoch: epoch, bucketPool: 8)
      XCTAssertEqual(plain.sorted(), Array(0..<1003))
      XCTAssertEqual(bucketed.sorted(), Array(0..<1003), "each example once per epoch")
      XCTAssertEqual(bucketed, BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: true, seed: 5, epoch: epoch, bucketPool: 8))
      XCTAssertNotEqual(bucketed, BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: true, seed: 6, epoch: epoch, bucketPool: 8))
      XCTAssertLessThan(spread(bucketed), spread(plain) / 4, "epoch \(epoch): batches of similar lengths")
      // 1003 = 31 x 32 + 11. Pools of 8 x 32 = 256: the last pool is plain[768...], and its short
      // batch (its 11 longest) is the last window
      let lastPool = plain[768...].sorted { (lengths[$0], $0) < (lengths[$1], $1) }
      XCTAssertEqual(Array(bucketed.suffix(11)), Array(lastPool.suffix(11)))
    }
    XCTAssertEqual(BatchOrder.epoch(lengths: lengths, batchSize: bs, shuffle: false, seed: 5, epoch: 1, bucketPool: 8),
                   Array(0..<1003), "no shuffle: file order, no bucketing")
  }

  func testLengthBucketsOptionKeepsOldSpecHashes() throws {
    var o = TrainOptions()
    let before = String(decoding: try JSONEncoder().encode(o), as: UTF8.self)
    XCTAssertFalse(before.contains("lengthBuckets"), "off: not encoded, so existing cells keep their hash")
    o.lengthBuckets = 20
    let data = try JSONEncoder().encode(o)
    XCTAssertEqual(try JSONDecoder().decode(TrainOptions.self, from: data).lengthBuckets, 20)
  }
}

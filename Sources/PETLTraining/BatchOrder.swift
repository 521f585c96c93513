import PETLKernels

/// The order of one epoch's training examples: consecutive windows of `batchSize` are the batches
/// (only the last may be short). Every rank of a data-parallel group computes the same order.
public enum BatchOrder {
  /// A seeded shuffle (none when `shuffle` is false). With `bucketPool` K, the shuffled examples are
  /// taken K batches' worth at a time, sorted by length within the pool, cut into batches, and the
  /// batches shuffled again: batches of similar lengths, each example still once per epoch, and in
  /// expectation the same training (the paper's recipe has no bucketing; it is off by default). With
  /// packed batches it saves no arithmetic (an epoch costs its tokens and Σ len² however they are
  /// grouped); it evens out per-batch cost.
  public static func epoch(lengths: [Int], batchSize: Int, shuffle: Bool, seed: UInt64, epoch: Int,
                           bucketPool: Int? = nil) -> [Int] {
    let n = lengths.count
    var order = Array(0..<n)
    guard shuffle else { return order }
    var rng = SeededGenerator(seed: CounterRNG.key(seed, 0x5348_5546, UInt64(epoch)))
    order.shuffle(using: &rng)
    guard let pool = bucketPool, pool > 1, batchSize > 0 else { return order }
    var batches: [ArraySlice<Int>] = []
    var i = 0
    while i < n {
      // (length, index) order: a total order, so the result does not depend on the sort's stability
      let chunk = order[i..<min(i + pool * batchSize, n)].sorted { (lengths[$0], $0) < (lengths[$1], $1) }
      var j = 0
      while j < chunk.count { batches.append(chunk[j..<min(j + batchSize, chunk.count)]); j += batchSize }
      i += pool * batchSize
    }
    // pools are whole batches, so only the very last batch can be short: it stays last
    var tail: [ArraySlice<Int>] = []
    if let last = batches.last, last.count < batchSize { tail = [last]; batches.removeLast() }
    var batchRng = SeededGenerator(seed: CounterRNG.key(seed, 0x4255_434B, UInt64(epoch)))
    batches.shuffle(using: &batchRng)
    return (batches + tail).flatMap { $0 }
  }
}

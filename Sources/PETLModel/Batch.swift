
/// A batch of tokenized examples, PACKED: the tokens of all sequences are concatenated, so no
/// compute is spent on padding. `offsets[b]..<offsets[b+1]` are sequence b's rows.
public struct Batch: Sendable {
  public var inputIds: [Int32]
  public var tokenTypes: [Int32]
  public var offsets: [Int]
  /// Class index (as Float) or regression target, one per sequence.
  public var labels: [Float]
  /// Global example ids: they key the dropout masks, so a data-parallel shard draws the same masks
  /// as the single-rank run of the same global batch.
  public var exampleIds: [UInt64]

  public var count: Int { offsets.count - 1 }
  public var tokens: Int { offsets.last ?? 0 }
  public var maxLength: Int {
    var m = 0
    for b in 0..<count { m = max(m, offsets[b + 1] - offsets[b]) }
    return m
  }

  public init(sequences: [(ids: [Int32], types: [Int32])], labels: [Float], exampleIds: [UInt64]) {
    var ids: [Int32] = [], types: [Int32] = [], offs = [0]
    ids.reserveCapacity(sequences.reduce(0) { $0 + $1.ids.count })
    types.reserveCapacity(ids.capacity)
    for s in sequences {
      ids += s.ids
      types += s.types
      offs.append(ids.count)
    }
    self.inputIds = ids; self.tokenTypes = types; self.offsets = offs
    self.labels = labels; self.exampleIds = exampleIds
  }
}

/// Where a tokenizer puts the ids of one text: the first `keep` ids are kept, every id is counted,
/// and with `stopWhenFull` the tokenizer stops as soon as `keep` are there. So encoding a text
/// truncated to `maxLength` holds at most `maxLength` ids whatever the text's length, and a pair
/// (which needs both texts' full lengths for longest-first truncation) counts the rest without
/// keeping it.
struct TokenSink {
  let keep: Int
  let stopWhenFull: Bool
  private(set) var ids: [Int32] = []
  private(set) var count = 0

  init(keep: Int = .max, stopWhenFull: Bool = false) {
    self.keep = max(keep, 0)
    self.stopWhenFull = stopWhenFull
    if keep < 4096 { ids.reserveCapacity(self.keep) }
  }

  /// True once no further id can change what the caller keeps.
  var done: Bool { stopWhenFull && count >= keep }

  @inline(__always)
  mutating func append(_ id: Int32) {
    if count < keep { ids.append(id) }
    count += 1
  }
}

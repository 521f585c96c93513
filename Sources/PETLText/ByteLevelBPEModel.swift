import PETLSupport

/// GPT-2's map from bytes to printable characters, which byte-level BPE vocabularies are written in:
/// the printable Latin-1 bytes (`!`...`~`, `¡`...`¬`, `®`...`ÿ`) stand for themselves and the other 68
/// (controls, space, U+00A0, the soft hyphen) become U+0100... in byte order, so a space is "Ġ"
/// (U+0120) and a newline "Ċ" (U+010A).
enum ByteLevelAlphabet {
  static let characters: [Unicode.Scalar] = {
    var map = [Unicode.Scalar](repeating: "\0", count: 256)
    var next: UInt32 = 256
    for b in 0..<256 {
      if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
        map[b] = Unicode.Scalar(UInt32(b))!
      } else {
        map[b] = Unicode.Scalar(next)!
        next += 1
      }
    }
    return map
  }()

  /// The vocabulary spelling of raw bytes.
  static func spelling<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    var text = String.UnicodeScalarView()
    for b in bytes { text.append(characters[Int(b)]) }
    return String(text)
  }
}

/// The BPE model of `tokenizers` as RoBERTa configures it (no unknown token, no dropout, no subword
/// prefix or suffix): a pre-tokenized piece starts as one symbol per byte and merges are applied
/// lowest rank first, leftmost first on equal rank, exactly as `Word::merge_all` does.
struct BPEModel: Sendable {
  /// The id of each byte's one-character token; nil when the vocabulary lacks it. RoBERTa's
  /// `BPE` has no `unk_token`, so `tokenizers` drops such a byte from the piece (no id at all).
  let byteIds: [Int32?]
  /// (left id << 32 | right id) -> (rank, id of the merged token). A pair listed twice keeps its
  /// last rank, as the `HashMap` `tokenizers` collects the merges into does.
  let merges: [UInt64: (rank: UInt32, id: Int32)]

  /// `vocabulary` maps the UTF-8 bytes of each token to its id. `merges` are in rank order; each
  /// part and their concatenation must be vocabulary tokens (the error names the missing token and
  /// where the merge came from, via `origin(rank)`).
  init(vocabulary: [[UInt8]: Int32], merges pairs: [(String, String)], origin: (Int) -> String) throws {
    byteIds = ByteLevelAlphabet.characters.map { vocabulary[Array(String($0).utf8)] }
    var merges: [UInt64: (rank: UInt32, id: Int32)] = [:]
    merges.reserveCapacity(pairs.count)
    for (rank, (a, b)) in pairs.enumerated() {
      func id(_ token: String, _ what: String) throws -> Int32 {
        guard let id = vocabulary[Array(token.utf8)] else {
          throw PETLError("\(origin(rank)): \(what) \(token.debugDescription) is not in the vocabulary")
        }
        return id
      }
      let left = try id(a, "merge part"), right = try id(b, "merge part")
      let merged = try id(a + b, "merged token")
      merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))] = (UInt32(rank), merged)
    }
    self.merges = merges
  }

  private func merge(_ left: Int32, _ right: Int32) -> (rank: UInt32, id: Int32)? {
    merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))]
  }

  /// Appends the ids of one pre-tokenized piece, given as its UTF-8 bytes.
  func append(_ bytes: [UInt8], to ids: inout [Int32], scratch: inout BPEScratch) {
    scratch.reset()
    for b in bytes {
      if let id = byteIds[Int(b)] { scratch.add(id) }
    }
    let n = scratch.ids.count
    if n == 0 { return }
    if n == 1 { ids.append(scratch.ids[0]); return }
    // The queue holds candidate merges keyed (rank << 32 | left position); positions are the
    // original symbol slots, which never move, so the smallest key is the lowest rank, leftmost.
    for p in 0..<(n - 1) {
      if let m = merge(scratch.ids[p], scratch.ids[p + 1]) { scratch.push(rank: m.rank, pos: p, id: m.id) }
    }
    while let top = scratch.pop() {
      let pos = top.pos
      // Stale entries: the left symbol was merged into its neighbour, or has none on its right, or
      // the pair at `pos` has changed since the entry was queued (checked, as `tokenizers` does, by
      // the merged token it would produce).
      if scratch.removed[pos] { continue }
      let nextPos = scratch.next[pos]
      if nextPos < 0 { continue }
      guard let current = merge(scratch.ids[pos], scratch.ids[nextPos]), current.id == top.id else { continue }
      scratch.ids[pos] = top.id
      scratch.removed[nextPos] = true
      let after = scratch.next[nextPos]
      scratch.next[pos] = after
      if after >= 0 { scratch.prev[after] = pos }
      let before = scratch.prev[pos]
      if before >= 0, let m = merge(scratch.ids[before], top.id) { scratch.push(rank: m.rank, pos: before, id: m.id) }
      if after >= 0, let m = merge(top.id, scratch.ids[after]) { scratch.push(rank: m.rank, pos: pos, id: m.id) }
    }
    for p in 0..<n where !scratch.removed[p] { ids.append(scratch.ids[p]) }
  }
}

/// Reusable buffers for `BPEModel.append` (one per `ids` call, so the tokenizer stays immutable and
/// shareable across threads): the symbol list as linked slots and a binary min-heap of merges.
struct BPEScratch {
  var ids: [Int32] = []
  var prev: [Int] = []
  var next: [Int] = []
  var removed: [Bool] = []
  private var heap: [(key: UInt64, id: Int32)] = []

  mutating func reset() {
    ids.removeAll(keepingCapacity: true)
    prev.removeAll(keepingCapacity: true)
    next.removeAll(keepingCapacity: true)
    removed.removeAll(keepingCapacity: true)
    heap.removeAll(keepingCapacity: true)
  }

  mutating func add(_ id: Int32) {
    let k = ids.count
    if k > 0 { next[k - 1] = k }
    ids.append(id)
    prev.append(k - 1)
    next.append(-1)
    removed.append(false)
  }

  mutating func push(rank: UInt32, pos: Int, id: Int32) {
    heap.append((UInt64(rank) << 32 | UInt64(pos), id))
    var c = heap.count - 1
    while c > 0 {
      let parent = (c - 1) / 2
      if heap[parent].key <= heap[c].key { break }
      heap.swapAt(parent, c)
      c = parent
    }
  }

  mutating func pop() -> (pos: Int, id: Int32)? {
    guard let first = heap.first else { return nil }
    let last = heap.removeLast()
    if !heap.isEmpty {
      heap[0] = last
      var p = 0
      while true {
        let l = 2 * p + 1, r = l + 1
        var m = p
        if l < heap.count && heap[l].key < heap[m].key { m = l }
        if r < heap.count && heap[r].key < heap[m].key { m = r }
        if m == p { break }
        heap.swapAt(p, m)
        p = m
      }
    }
    return (Int(first.key & 0xFFFF_FFFF), first.id)
  }
}

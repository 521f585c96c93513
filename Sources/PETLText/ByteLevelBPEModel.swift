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
///
/// A piece is cut where no merge can ever join the bytes on either side (no merged token holds
/// that pair of bytes next to each other): the parts merge exactly as the whole would, and each is
/// held only while it merges. So a 10 MB run of one character costs memory in proportion to the
/// longest stretch that merges could span, not to the run (when the vocabulary can span the whole
/// run, as a vocabulary with merges of runs of spaces can, the run is held, about 24 bytes a byte).
struct BPEModel: Sendable {
  /// The id of each byte's one-character token; nil when the vocabulary lacks it. RoBERTa's
  /// `BPE` has no `unk_token`, so `tokenizers` drops such a byte from the piece (no id at all).
  let byteIds: [Int32?]
  /// (left id << 32 | right id) -> (rank, id of the merged token). A pair listed twice keeps its
  /// last rank, as the `HashMap` `tokenizers` collects the merges into does.
  let merges: [UInt64: (rank: UInt32, id: Int32)]
  /// Bit `a << 8 | b`: some merged token holds byte `a` directly followed by byte `b`. Where it is
  /// not set, no merge can ever cross between those two (kept) bytes.
  var joinable: [UInt64]

  /// `vocabulary` maps the UTF-8 bytes of each token to its id. `merges` are in rank order; each
  /// part and their concatenation must be vocabulary tokens (the error names the missing token and
  /// where the merge came from, via `origin(rank)`).
  init(vocabulary: [[UInt8]: Int32], merges pairs: [(String, String)], origin: (Int) -> String) throws {
    byteIds = ByteLevelAlphabet.characters.map { vocabulary[Array(String($0).utf8)] }
    var byteOf: [Unicode.Scalar: UInt8] = [:]
    for (b, c) in ByteLevelAlphabet.characters.enumerated() { byteOf[c] = UInt8(b) }
    var merges: [UInt64: (rank: UInt32, id: Int32)] = [:]
    var joinable = [UInt64](repeating: 0, count: 1024)
    merges.reserveCapacity(pairs.count)
    for (rank, (a, b)) in pairs.enumerated() {
      func id(_ token: String, _ what: String) throws -> Int32 {
        guard let id = vocabulary[Array(token.utf8)] else {
          throw PETLError("\(origin(rank)): \(what) \(shown(token.debugDescription)) is not in the vocabulary")
        }
        return id
      }
      let left = try id(a, "merge part"), right = try id(b, "merge part")
      let merged = try id(a + b, "merged token")
      merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))] = (UInt32(rank), merged)
      // A merged token spelt with a character outside the byte alphabet can never be formed.
      let bytes = (a + b).unicodeScalars.map { byteOf[$0] }
      if bytes.allSatisfy({ $0 != nil }) {
        for k in bytes.indices.dropFirst() {
          let bit = Int(bytes[k - 1]!) << 8 | Int(bytes[k]!)
          joinable[bit >> 6] |= 1 << UInt64(bit & 63)
        }
      }
    }
    self.merges = merges
    self.joinable = joinable
  }

  @inline(__always)
  private func merge(_ left: Int32, _ right: Int32) -> (rank: UInt32, id: Int32)? {
    merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))]
  }

  @inline(__always)
  private func canJoin(_ a: UInt8, _ b: UInt8) -> Bool {
    let bit = Int(a) << 8 | Int(b)
    return joinable[bit >> 6] & (1 << UInt64(bit & 63)) != 0
  }

  /// Appends the ids of one pre-tokenized piece (`bytes[range]`) to `sink`, part by part between
  /// the cuts no merge can cross; stops between parts once the sink is done.
  func append(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, to sink: inout TokenSink, scratch: inout BPEScratch) {
    scratch.reset()
    var previous: UInt8? = nil
    for i in range {
      let b = bytes[i]
      guard let id = byteIds[Int(b)] else { continue }
      if let p = previous, !canJoin(p, b) {
        merge(&scratch, into: &sink)
        if sink.done { return }
        scratch.reset()
      }
      scratch.add(id)
      previous = b
    }
    merge(&scratch, into: &sink)
  }

  /// Merges the symbols in `scratch` and appends the result.
  private func merge(_ scratch: inout BPEScratch, into sink: inout TokenSink) {
    let n = scratch.ids.count
    if n == 0 { return }
    if n == 1 { sink.append(scratch.ids[0]); return }
    // The queue holds candidate merges keyed (rank, left position); positions are the original
    // symbol slots, which never move, so the smallest key is the lowest rank, leftmost.
    for p in 0..<(n - 1) {
      if let m = merge(scratch.ids[p], scratch.ids[p + 1]) { scratch.append(rank: m.rank, pos: p, id: m.id) }
    }
    scratch.heapify()
    while let top = scratch.pop() {
      let pos = top.pos
      // Stale entries: the left symbol was merged into its neighbour, or has none on its right, or
      // the pair at `pos` has changed since the entry was queued (checked, as `tokenizers` does, by
      // the merged token it would produce).
      if scratch.ids[pos] < 0 { continue }
      let nextPos = Int(scratch.next[pos])
      if nextPos < 0 { continue }
      guard let current = merge(scratch.ids[pos], scratch.ids[nextPos]), current.id == top.id else { continue }
      scratch.ids[pos] = top.id
      scratch.ids[nextPos] = -1
      let after = Int(scratch.next[nextPos])
      scratch.next[pos] = Int32(after)
      if after >= 0 { scratch.prev[after] = Int32(pos) }
      let before = Int(scratch.prev[pos])
      if before >= 0, let m = merge(scratch.ids[before], top.id) { scratch.push(rank: m.rank, pos: before, id: m.id) }
      if after >= 0, let m = merge(top.id, scratch.ids[after]) { scratch.push(rank: m.rank, pos: pos, id: m.id) }
    }
    for p in 0..<n where scratch.ids[p] >= 0 { sink.append(scratch.ids[p]) }
  }
}

/// Reusable buffers for `BPEModel.append` (one per text, so the tokenizer stays immutable and
/// shareable across threads): the symbol list as linked slots (a merged-away slot's id is -1) and a
/// binary min-heap of merges, 12 bytes an entry.
struct BPEScratch {
  var ids: [Int32] = []
  var prev: [Int32] = []
  var next: [Int32] = []
  private var heap: [Entry] = []

  private struct Entry {
    var rank: UInt32
    var pos: UInt32
    var id: Int32
    @inline(__always) static func < (a: Entry, b: Entry) -> Bool { (a.rank, a.pos) < (b.rank, b.pos) }
  }

  mutating func reset() {
    ids.removeAll(keepingCapacity: true)
    prev.removeAll(keepingCapacity: true)
    next.removeAll(keepingCapacity: true)
    heap.removeAll(keepingCapacity: true)
  }

  mutating func add(_ id: Int32) {
    let k = Int32(ids.count)
    if k > 0 { next[Int(k) - 1] = k }
    ids.append(id)
    prev.append(k - 1)
    next.append(-1)
  }

  /// Adds an entry without restoring the heap order (`heapify` does, once, for the initial pairs).
  mutating func append(rank: UInt32, pos: Int, id: Int32) {
    heap.append(Entry(rank: rank, pos: UInt32(pos), id: id))
  }

  /// Bottom-up heap construction: linear in the entries, where pushing them one by one is n log n.
  mutating func heapify() {
    var i = heap.count / 2
    while i > 0 {
      i -= 1
      siftDown(i)
    }
  }

  mutating func push(rank: UInt32, pos: Int, id: Int32) {
    heap.append(Entry(rank: rank, pos: UInt32(pos), id: id))
    var c = heap.count - 1
    while c > 0 {
      let parent = (c - 1) / 2
      if !(heap[c] < heap[parent]) { break }
      heap.swapAt(parent, c)
      c = parent
    }
  }

  mutating func pop() -> (pos: Int, id: Int32)? {
    guard let first = heap.first else { return nil }
    let last = heap.removeLast()
    if !heap.isEmpty {
      heap[0] = last
      siftDown(0)
    }
    return (Int(first.pos), first.id)
  }

  private mutating func siftDown(_ start: Int) {
    var p = start
    while true {
      let l = 2 * p + 1, r = l + 1
      var m = p
      if l < heap.count && heap[l] < heap[m] { m = l }
      if r < heap.count && heap[r] < heap[m] { m = r }
      if m == p { break }
      heap.swapAt(p, m)
      p = m
    }
  }
}

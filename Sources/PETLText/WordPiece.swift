
/// Greedy longest-match-first WordPiece over one pre-tokenized word, as BERT (and HuggingFace's
/// `WordPiece` model) does it: the first piece is matched against whole tokens, later pieces against
/// `##` tokens. If any position has no match, or the word is longer than `maxInputCharsPerWord`
/// scalars, the whole word becomes `[UNK]`.
struct WordPiece: Sendable {
  let vocabulary: Vocabulary
  let unkId: Int32
  static let maxInputCharsPerWord = 100

  /// Appends the ids of `word` (normalized scalars) to `ids`. `utf8` and `offsets` are scratch buffers
  /// reused across words to avoid allocating per word.
  func append(
    _ word: ArraySlice<Unicode.Scalar>, to ids: inout [Int32],
    utf8: inout [UInt8], offsets: inout [Int]
  ) {
    if word.count > WordPiece.maxInputCharsPerWord { ids.append(unkId); return }
    // offsets[i] = byte offset of scalar i; offsets[count] = total bytes.
    utf8.removeAll(keepingCapacity: true)
    offsets.removeAll(keepingCapacity: true)
    for s in word {
      offsets.append(utf8.count)
      UTF8.encode(s) { utf8.append($0) }
    }
    offsets.append(utf8.count)

    let mark = ids.count
    var start = 0
    let n = word.count
    while start < n {
      let table = start == 0 ? vocabulary.wordStart : vocabulary.continuation
      let longest = start == 0 ? vocabulary.longestWordStart : vocabulary.longestContinuation
      var end = min(n, start + longest)
      var found: Int32? = nil
      while end > start {
        if let id = table[utf8[offsets[start]..<offsets[end]]] { found = id; break }
        end -= 1
      }
      guard let id = found else {
        ids.removeSubrange(mark...)
        ids.append(unkId)
        return
      }
      ids.append(id)
      start = end
    }
  }
}

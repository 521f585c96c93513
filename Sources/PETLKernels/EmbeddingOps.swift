/// The embedding tables' lookups over PACKED sequences (sequence b is rows offsets[b]..<offsets[b+1],
/// and its token t has position t unless position ids are given), and their gradients as scatter-adds.
extension Ops {
  /// out [N,H] = word[ids[r]] + position[t] + type[types[r]] for row r = offsets[b] + t; with
  /// `positions`, position[positions[r]] (RoBERTa's offset positions); with `type` nil, no type table.
  public static func embeddingSum(_ out: UnsafeMutablePointer<Float>, word: UnsafePointer<Float>,
                                  position: UnsafePointer<Float>, type: UnsafePointer<Float>?,
                                  ids: [Int32], types: [Int32], positions: [Int32]?, offsets: [Int], hidden H: Int) {
    let B = offsets.count - 1, N = offsets.last ?? 0
    offsets.withUnsafeBufferPointer { offs in
      ids.withUnsafeBufferPointer { ids in
        types.withUnsafeBufferPointer { types in
          (positions ?? []).withUnsafeBufferPointer { pos in
            Parallel.forRanges(B, minChunk: N * H >= 1 << 15 ? 1 : B) { _, seqs in
              for b in seqs {
                let o = offs[b]
                for t in 0..<(offs[b + 1] - o) {
                  let row = out + (o + t) * H
                  let w = word + Int(ids[o + t]) * H, pp = position + (pos.isEmpty ? t : Int(pos[o + t])) * H
                  if let type {
                    let ty = type + Int(types[o + t]) * H
                    forEachBlock(H) { i, l in store16(load16(w, i, l) + load16(pp, i, l) + load16(ty, i, l), row, i, l) }
                  } else {
                    forEachBlock(H) { i, l in store16(load16(w, i, l) + load16(pp, i, l), row, i, l) }
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// table[index[r]] += d[r] for every row r of d [N,H] (a word or token-type table's gradient).
  /// Split by columns, so each table element gets its rows' terms in row order.
  public static func scatterAddRows(_ table: UnsafeMutablePointer<Float>, _ d: UnsafePointer<Float>, index: [Int32], cols H: Int) {
    let N = index.count
    index.withUnsafeBufferPointer { index in
      Parallel.forColumns(H, rows: N) { lo, hi in
        for r in 0..<N {
          let dst = table + Int(index[r]) * H + lo, src = d + r * H + lo
          forEachBlock(hi - lo) { i, l in store16(load16(dst, i, l) + load16(src, i, l), dst, i, l) }
        }
      }
    }
  }

  /// table[t] += d[offsets[b] + t] for every sequence b and its token t (the position table's
  /// gradient), in row order per element as `scatterAddRows`.
  public static func scatterAddPositions(_ table: UnsafeMutablePointer<Float>, _ d: UnsafePointer<Float>, offsets: [Int], cols H: Int) {
    let B = offsets.count - 1, N = offsets.last ?? 0
    offsets.withUnsafeBufferPointer { o in
      Parallel.forColumns(H, rows: N) { lo, hi in
        for b in 0..<B {
          for t in 0..<(o[b + 1] - o[b]) {
            let dst = table + t * H + lo, src = d + (o[b] + t) * H + lo
            forEachBlock(hi - lo) { i, l in store16(load16(dst, i, l) + load16(src, i, l), dst, i, l) }
          }
        }
      }
    }
  }
}

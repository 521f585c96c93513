/// Inverted dropout over packed [N, C] activations, keyed per example so the mask of a token does not
/// depend on which rank holds it or how its batch was packed: element (t, c) of example e uses
/// counter index t<<16|c in stream key(base, e). The backward pass regenerates the same mask.
public enum Dropout {
  public static func apply(
    _ x: UnsafeMutablePointer<Float>, offsets: [Int], exampleIds: [UInt64], cols C: Int, p: Float, base: UInt64
  ) {
    guard p > 0 else { return }
    let scale = 1 / (1 - p)
    for b in 0..<(offsets.count - 1) {
      let key = CounterRNG.key(base, exampleIds[b])
      for t in 0..<(offsets[b + 1] - offsets[b]) {
        let row = x + (offsets[b] + t) * C
        for c in 0..<C {
          row[c] = CounterRNG.uniform(key, UInt64(t << 16 | c)) < p ? 0 : row[c] * scale
        }
      }
    }
  }
}


extension EncoderModel {
  /// Sentence embeddings as sentence-transformers computes them for all-MiniLM-L6-v2: the mean of
  /// the last hidden states over the real tokens, L2-normalised. One vector per sequence.
  public func embed(_ batch: Batch, ws: Workspace) -> [[Float]] {
    forward(batch, ws: ws, training: false, depth: .encoder, forBackward: false)
    let H = dims.hidden, x = ws.x[dims.layers].p
    return (0..<batch.count).map { b in
      var v = [Float](repeating: 0, count: H)
      let o = batch.offsets[b], n = batch.offsets[b + 1] - o
      for t in 0..<n { for c in 0..<H { v[c] += x[(o + t) * H + c] } }
      var norm: Float = 0
      for c in 0..<H { v[c] /= Float(n); norm += v[c] * v[c] }
      let inv = 1 / max(norm.squareRoot(), 1e-12)
      return v.map { $0 * inv }
    }
  }
}

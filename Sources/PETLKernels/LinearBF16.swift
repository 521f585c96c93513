extension Ops {
  /// `weightGradientEntries` from bf16 operands (the `random` control's scattered weight entries in
  /// `Precision.bf16`): each entry's dot product over the rows reads the rounded values, in fp32.
  public static func weightGradientEntries(_ dw: UnsafeMutablePointer<Float>, indices: [Int],
                                           dout: UnsafePointer<BF16>, inp: UnsafePointer<BF16>, n: Int, i: Int, o: Int) {
    indices.withUnsafeBufferPointer { idx in
      Parallel.forRanges(idx.count, minChunk: 64) { _, ks in
        for k in ks {
          let r = idx[k] / i, c = idx[k] % i
          var s: Float = 0
          for t in 0..<n { s += BFloat16.float(dout[t * o + r]) * BFloat16.float(inp[t * i + c]) }
          dw[k] += s
        }
      }
    }
  }
}

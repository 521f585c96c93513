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

  /// `geluForward` writing g rounded to bf16 (its only reader is the next bf16 product); the slope
  /// stays fp32.
  public static func geluForward(rounded g: UnsafeMutablePointer<BF16>, _ u: UnsafeMutablePointer<Float>, count: Int,
                                 slope: UnsafeMutablePointer<Float>? = nil) {
    Parallel.forFloats(count) { lo, hi in
      let g = g + lo, u = u + lo
      forEachBlock(hi - lo) { i, l in
        let x = load16(u, i, l)
        let (erf, e) = FastMath.erfAndGaussian(x * 0.707_106_781_186_547_5)
        let cdf = 0.5 * (1 + erf)
        BFloat16.store16(x * cdf, g, i, l)
        if let slope { store16(cdf + x * (e * 0.398_942_280_401_432_7), slope + lo, i, l) }
      }
    }
  }
}

import PETLKernels

/// The model's linear layers in its precision: fp32 on `Ops` (OpenBLAS or oneDNN, `BLAS.gemm`), or
/// bf16 operands on oneDNN with fp32 accumulation (`Precision.bf16`), PyTorch autocast's `linear`:
/// the activation (or output gradient) is rounded just before the product reads it, the weight and
/// bias come rounded from `BF16Operands`, the result and every gradient stay fp32.
extension EncoderModel {
  /// out[n,o] = inp[n,i] · Wᵀ + b. `rounded`: `inp` already rounded (one copy for the layers that
  /// read the same input, from `roundedInput`).
  func linearForward(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, _ t: TensorPair,
                     n: Int, i: Int, o: Int, ws: Workspace, rounded: UnsafePointer<BF16>? = nil) {
    guard let bf16 else {
      Ops.linearForward(out, inp, params + t.weight, params + t.bias, n: n, i: i, o: o)
      return
    }
    let xb = rounded ?? roundedInput(inp, count: n * i, ws: ws)
    Matmul.bf16(transA: false, transB: true, m: n, n: o, k: i, a: xb, b: bf16.weight(t), c: out, bias: bf16.bias(t))
  }

  /// dinp[n,i] (+)= dout · W;  dW += doutᵀ · inp;  db += Σ_rows dout (see `Ops.linearBackward`).
  func linearBackward(dinp: UnsafeMutablePointer<Float>?, accumulateInput: Bool = false, dw: WeightGradient?,
                      db: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, _ t: TensorPair,
                      n: Int, i: Int, o: Int, ws: Workspace, rounded: UnsafePointer<BF16>? = nil) {
    guard let bf16 else {
      Ops.linearBackward(dinp: dinp, accumulateInput: accumulateInput, dw: dw, db: db, dout: dout, inp: inp,
                         w: params + t.weight, n: n, i: i, o: o)
      return
    }
    if dinp != nil || dw != nil {
      BFloat16.convertParallel(dout, ws.bfOut.p, count: n * o)
      let dyb = UnsafePointer(ws.bfOut.p)
      if let dinp {
        Matmul.bf16(transA: false, transB: false, m: n, n: i, k: o, a: dyb, b: bf16.weight(t), beta: accumulateInput ? 1 : 0, c: dinp)
      }
      switch dw {
      case .dense(let g)?:
        let xb = rounded ?? roundedInput(inp, count: n * i, ws: ws)
        Matmul.bf16(transA: true, transB: false, m: o, n: i, k: n, a: dyb, b: xb, beta: 1, c: g)
      case .entries(let g, let indices)?:
        let xb = rounded ?? roundedInput(inp, count: n * i, ws: ws)
        Ops.weightGradientEntries(g, indices: indices, dout: dyb, inp: xb, n: n, i: i, o: o)
      case nil: break
      }
    }
    if let db { Ops.columnSums(dout, rows: n, cols: o, into: db) }
  }

  /// `x` rounded to bf16 in the workspace's operand buffer (valid until the next rounding there).
  func roundedInput(_ x: UnsafePointer<Float>, count: Int, ws: Workspace) -> UnsafePointer<BF16> {
    BFloat16.convertParallel(x, ws.bfIn.p, count: count)
    return UnsafePointer(ws.bfIn.p)
  }
}

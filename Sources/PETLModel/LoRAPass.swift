import PETLKernels

/// A LoRA adapter's forward beside its backward (PEFT's `lora.Linear`), on top of the frozen linear
/// layer it adapts: `layerForward` adds it after the layer's product, `layerBackward` after the
/// layer's gradient. t = dropout(x) · Aᵀ [n,R] is recomputed in the backward (R is small: a product
/// of n·in·R), so the adapters keep no activations of their own.
extension EncoderModel {
  /// The dropout stream of one adapter: the layer's LoRA site, then the module kind.
  func loraKey(_ layerKey: UInt64, _ pair: LoRAPair) -> UInt64 { CounterRNG.key(layerKey, UInt64(pair.kindIndex)) }

  /// out[n,o] += s · (dropout(inp) · Aᵀ) · Bᵀ, s = alpha/R.
  func loraForward(_ pair: LoRAPair, _ inp: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, n: Int, i: Int, o: Int,
                   ws: Workspace, dropout: RowDropout) {
    let R = pair.rank, s = layout.lora!.scale
    let x = loraInput(inp, n: n, i: i, ws: ws, dropout: dropout)
    // t [n,R] = x · Aᵀ
    BLAS.gemm(transA: false, transB: true, m: n, n: R, k: i, a: x, b: params + pair.a, beta: 0, c: ws.loraT.p)
    // out [n,o] += s · t · Bᵀ
    BLAS.gemm(transA: false, transB: true, m: n, n: o, k: R, alpha: s, a: ws.loraT.p, b: params + pair.b, beta: 1, c: out)
  }

  /// From dout [n,o] of the adapted layer and its input [n,i]: dB += s · doutᵀ · t, dt = s · dout · B,
  /// dA += dtᵀ · x (nil gradients: frozen), and dinp += dropout'(dt · A) when the input's gradient
  /// is needed (dinp non-nil: the layer's own backward has written or accumulated it already).
  func loraBackward(_ pair: LoRAPair, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, dinp: UnsafeMutablePointer<Float>?,
                    dA: UnsafeMutablePointer<Float>?, dB: UnsafeMutablePointer<Float>?, n: Int, i: Int, o: Int,
                    ws: Workspace, dropout: RowDropout) {
    guard dinp != nil || dA != nil || dB != nil else { return }
    let R = pair.rank, s = layout.lora!.scale
    let A = params + pair.a, Bm = params + pair.b
    let x = loraInput(inp, n: n, i: i, ws: ws, dropout: dropout)
    if let dB {
      // t [n,R] = x · Aᵀ (as the forward had it); dB [o,R] += s · doutᵀ · t
      BLAS.gemm(transA: false, transB: true, m: n, n: R, k: i, a: x, b: A, beta: 0, c: ws.loraT.p)
      BLAS.gemm(transA: true, transB: false, m: o, n: R, k: n, alpha: s, a: dout, b: ws.loraT.p, beta: 1, c: dB)
    }
    guard dinp != nil || dA != nil else { return }
    // dt [n,R] = s · dout · B
    BLAS.gemm(transA: false, transB: false, m: n, n: R, k: o, alpha: s, a: dout, b: Bm, beta: 0, c: ws.loraDT.p)
    if let dA {
      // dA [R,i] += dtᵀ · x
      BLAS.gemm(transA: true, transB: false, m: R, n: i, k: n, a: ws.loraDT.p, b: x, beta: 1, c: dA)
    }
    guard let dinp else { return }
    if dropout.p > 0 {
      // dx [n,i] = dropout'(dt · A), through the forward's mask (the dropped input is no longer needed)
      BLAS.gemm(transA: false, transB: false, m: n, n: i, k: R, a: ws.loraDT.p, b: A, beta: 0, c: ws.loraIn.p)
      Dropout.apply(ws.loraIn.p, offsets: dropout.offsets, exampleIds: dropout.exampleIds, cols: i, p: dropout.p, base: dropout.base)
      Ops.addInPlace(dinp, ws.loraIn.p, count: n * i)
    } else {
      BLAS.gemm(transA: false, transB: false, m: n, n: i, k: R, a: ws.loraDT.p, b: A, beta: 1, c: dinp)
    }
  }

  /// The adapter's input: `inp` itself, or (dropout on) a dropped copy in `ws.loraIn`.
  private func loraInput(_ inp: UnsafePointer<Float>, n: Int, i: Int, ws: Workspace, dropout: RowDropout) -> UnsafePointer<Float> {
    guard dropout.p > 0 else { return inp }
    ws.loraIn.p.update(from: inp, count: n * i)
    Dropout.apply(ws.loraIn.p, offsets: dropout.offsets, exampleIds: dropout.exampleIds, cols: i, p: dropout.p, base: dropout.base)
    return UnsafePointer(ws.loraIn.p)
  }
}

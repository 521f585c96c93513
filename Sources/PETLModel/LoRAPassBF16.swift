import PETLKernels

/// A LoRA adapter in bf16 (`Precision.bf16`), forward beside backward: what PyTorch's CPU autocast
/// does to PEFT's `lora.Linear`. Its `lora_A` and `lora_B` are `nn.Linear`s, so autocast runs them
/// like every other linear layer, on bf16 operands with fp32 accumulation; the engine does the same
/// on oneDNN's bf16 matmul. The adapter's products could as well run in fp32 on the rounded values
/// (a product of two bf16 values is exact in fp32, only the summation order would differ), but the
/// bf16 kernel is the engine's one rule for a bf16 product and reads the rounded copies directly.
///
/// - Input: the rounded input its frozen product reads (x, ctx, y1 or g rounded: `Workspace.qb`...),
///   which the backward finds again where the forward stored it. Autocast's `lora_A` reads the same
///   bf16 values.
/// - A and B: their rounded copies (`BF16Operands`, refreshed after every update); the fp32 masters,
///   their gradients and AdamW state stay fp32.
/// - t = x·Aᵀ is an fp32 sum rounded as the B-product's operand (autocast's t is that bf16 value).
///   The term s·t·Bᵀ stays fp32 and is added to the frozen product's fp32 sum; autocast rounds the
///   term, the base result and their sum, the engine keeps products' results fp32 as everywhere
///   (docs/precision.md). q, k and v, stored only rounded, are rounded once, after the sum.
/// - Backward: dout, dt and the input rounded as operands; fp32 accumulation and results.
/// - Dropout (p > 0) drops the widened rounded input in fp32 and rounds it again, so the backward
///   can rebuild it from the stored rounded input. PyTorch drops its input before the one rounding:
///   where that input is fp32 (query, key, value, intermediate) a kept element scaled by 1/(1-p) may
///   land one bf16 step away.
extension EncoderModel {
  /// out[n,o] += s · round(x · Aᵀ) · Bᵀ with x = the rounded (dropped) input xr [n,i]; A, B rounded.
  func loraForwardBF16(_ pair: LoRAPair, _ xr: UnsafePointer<BF16>, _ out: UnsafeMutablePointer<Float>, n: Int, i: Int, o: Int,
                       ws: Workspace, dropout: RowDropout) {
    let (A, Bm) = bf16!.adapter(pair)
    let R = pair.rank, s = layout.lora!.scale
    let x = loraInputBF16(xr, n: n, i: i, ws: ws, dropout: dropout)
    // t [n,R] = round(x · Aᵀ)
    Matmul.bf16(transA: false, transB: true, m: n, n: R, k: i, a: x, b: A, rounded: ws.loraTb.p)
    // out [n,o] += s · t · Bᵀ
    Matmul.bf16(transA: false, transB: true, m: n, n: o, k: R, alpha: s, a: ws.loraTb.p, b: Bm, beta: 1, c: out)
  }

  /// From dout [n,o] of the adapted layer: dB += s · round(dout)ᵀ · t, dt = round(s · round(dout) · B),
  /// dA += dtᵀ · x, and dinp += dropout'(dt · A) when the input's gradient is needed (the frozen
  /// layer's backward has written or accumulated it already). `doutRounded`: `ws.bfOut` holds dout
  /// rounded already (the frozen layer's backward rounded it). `xr`: the rounded input, nil to round
  /// `inp` here (into `ws.bfIn`).
  func loraBackwardBF16(_ pair: LoRAPair, dout: UnsafePointer<Float>, doutRounded: Bool, inp: UnsafePointer<Float>,
                        rounded xr: UnsafePointer<BF16>?, dinp: UnsafeMutablePointer<Float>?, dA: UnsafeMutablePointer<Float>?,
                        dB: UnsafeMutablePointer<Float>?, n: Int, i: Int, o: Int, ws: Workspace, dropout: RowDropout) {
    guard dinp != nil || dA != nil || dB != nil else { return }
    let (A, Bm) = bf16!.adapter(pair)
    let R = pair.rank, s = layout.lora!.scale
    if !doutRounded { BFloat16.convertParallel(dout, ws.bfOut.p, count: n * o) }
    let dyb = UnsafePointer(ws.bfOut.p)
    // the adapter's input as the forward had it (only the weight gradients read it)
    let x = dA == nil && dB == nil ? nil
      : loraInputBF16(xr ?? roundedInput(inp, count: n * i, ws: ws), n: n, i: i, ws: ws, dropout: dropout)
    if let dB, let x {
      // t [n,R] = round(x · Aᵀ) (as the forward had it); dB [o,R] += s · doutᵀ · t
      Matmul.bf16(transA: false, transB: true, m: n, n: R, k: i, a: x, b: A, rounded: ws.loraTb.p)
      Matmul.bf16(transA: true, transB: false, m: o, n: R, k: n, alpha: s, a: dyb, b: ws.loraTb.p, beta: 1, c: dB)
    }
    guard dinp != nil || dA != nil else { return }
    // dt [n,R] = round(s · dout · B)
    Matmul.bf16(transA: false, transB: false, m: n, n: R, k: o, alpha: s, a: dyb, b: Bm, rounded: ws.loraDTb.p)
    if let dA, let x {
      // dA [R,i] += dtᵀ · x
      Matmul.bf16(transA: true, transB: false, m: R, n: i, k: n, a: ws.loraDTb.p, b: x, beta: 1, c: dA)
    }
    guard let dinp else { return }
    if dropout.p > 0 {
      // dx [n,i] = dropout'(dt · A), through the forward's mask (the dropped input is read no more)
      Matmul.bf16(transA: false, transB: false, m: n, n: i, k: R, a: ws.loraDTb.p, b: A, beta: 0, c: ws.loraIn.p)
      Dropout.apply(ws.loraIn.p, offsets: dropout.offsets, exampleIds: dropout.exampleIds, cols: i, p: dropout.p, base: dropout.base)
      Ops.addInPlace(dinp, ws.loraIn.p, count: n * i)
    } else {
      Matmul.bf16(transA: false, transB: false, m: n, n: i, k: R, a: ws.loraDTb.p, b: A, beta: 1, c: dinp)
    }
  }

  /// The adapter's bf16 input: `xr` itself, or (dropout on) xr widened, dropped and rounded again
  /// (in `ws.loraInb`; `ws.loraIn` is its fp32 scratch).
  private func loraInputBF16(_ xr: UnsafePointer<BF16>, n: Int, i: Int, ws: Workspace, dropout: RowDropout) -> UnsafePointer<BF16> {
    guard dropout.p > 0 else { return xr }
    BFloat16.widenParallel(xr, ws.loraIn.p, count: n * i)
    Dropout.apply(ws.loraIn.p, offsets: dropout.offsets, exampleIds: dropout.exampleIds, cols: i, p: dropout.p, base: dropout.base)
    BFloat16.convertParallel(ws.loraIn.p, ws.loraInb.p, count: n * i)
    return UnsafePointer(ws.loraInb.p)
  }
}

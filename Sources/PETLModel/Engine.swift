/// The engine's numerics, versioned. Bump `numericsVersion` with any change that would change a
/// trained cell's numbers (a kernel's summation order, dropout masks, initialisation, the optimizer,
/// tokenization): journals then rerun their cells instead of mixing old results with new ones.
///
/// History: 1 the first recorded; 2 the head-only cell uses the frozen-prefix cache (its frozen encoder
/// then runs without dropout) and `random` at chosen layers draws from those layers only; 3 the
/// learning-rate search moves its last rung on while the leader predicts one class, and every cell
/// records its collapse check and dev predictions; 4 large fp32 products run on oneDNN where OpenBLAS's
/// kernel is narrower than the CPU (`FP32Backend`: another summation order on such machines).
public enum Engine {
  public static let numericsVersion = 4
}

import CBLAS
import Synchronization

/// Row-major single-precision GEMM wrappers over OpenBLAS and oneDNN. Every matrix in the engine is row-major;
/// HuggingFace linear weights are [out, in], so a linear layer is `Y = X · Wᵀ`.
public enum BLAS {
  /// C[m,n] = alpha * op(A) · op(B) + beta * C, with op given by the transpose flags.
  /// `lda`, `ldb`, `ldc` are row strides (elements), defaulting to the dense ones.
  ///
  /// A product of at least `splitThreshold` multiply-adds runs on oneDNN's fp32 matmul where
  /// OpenBLAS's kernel is narrower than the CPU (`FP32Backend`), else on OpenBLAS; smaller ones
  /// (attention's per-head products, the head's [B,H] layers) on OpenBLAS.
  @inline(__always)
  public static func gemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
    b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil
  ) {
    if m * n * k >= splitThreshold {
      FP32Backend.note(transA: transA, transB: transB, m: m, n: n, k: k)
    }
    if m * n * k >= splitThreshold, beta == 0 || beta == 1, FP32Backend.usesOneDNN {
      Matmul.f32(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                 beta: beta, c: c, ldc: ldc)
      return
    }
    openBLAS(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
             beta: beta, c: c, ldc: ldc)
  }

  /// `gemm` on OpenBLAS. A large product is cut into one block of C per worker (`Parallel`), each a
  /// single-threaded OpenBLAS call: rows of C when A's rows are the tokens (`X · Wᵀ`, `dY · W`: every
  /// worker packs the small weight, the big activation splits), the longer side of C for a weight
  /// gradient (`dYᵀ · X`): on this model's shapes that split is faster than OpenBLAS's own threads
  /// and than the other split (`swift-petl bench` prints the GEMM rate). The split changes rounding
  /// at most (Model/ShortcutTests compare 1 and 2 workers).
  @inline(__always)
  static func openBLAS(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
    b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil
  ) {
    let la = lda ?? (transA ? m : k)
    let lb = ldb ?? (transB ? k : n)
    let lc = ldc ?? n
    countFlops(2 * m * n * k)
    let w = Parallel.workers
    guard w > 1, m * n * k >= splitThreshold else {
      sgemm(transA, transB, m, n, k, alpha, a, la, b, lb, beta, c, lc)
      return
    }
    if !transA || m >= n {
      // rows of C: op(A) rows r0..<r1
      let blocks = (m + 15) / 16
      Parallel.forRanges(blocks) { _, r in
        let r0 = r.lowerBound * 16, r1 = min(m, r.upperBound * 16)
        guard r1 > r0 else { return }
        sgemm(transA, transB, r1 - r0, n, k, alpha, transA ? a + r0 : a + r0 * la, la, b, lb, beta, c + r0 * lc, lc)
      }
    } else {
      // columns of C: op(B) columns c0..<c1
      let blocks = (n + 15) / 16
      Parallel.forRanges(blocks) { _, r in
        let c0 = r.lowerBound * 16, c1 = min(n, r.upperBound * 16)
        guard c1 > c0 else { return }
        sgemm(transA, transB, m, c1 - c0, k, alpha, a, la, transB ? b + c0 * lb : b + c0, lb, beta, c + c0, lc)
      }
    }
  }

  /// GEMMs below this many multiply-adds (m·n·k) run on the calling thread: attention's per-head
  /// products and the head's [B,H] layers.
  static let splitThreshold = 1 << 21

  @inline(__always)
  private static func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                            _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
      blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
  }

  /// The kernel OpenBLAS picked at load time (e.g. "SkylakeX", or "Prescott" when it did not
  /// recognise the CPU and fell back to a slow generic kernel).
  public static var coreName: String {
    guard let p = openblas_get_corename() else { return "unknown" }
    return String(cString: p)
  }

  /// FLOPs of every GEMM run (including the engine's own small-matrix kernels), for the bench.
  static let flopCounter = Atomic<Int>(0)
  @inline(__always)
  public static func countFlops(_ n: Int) { flopCounter.add(n, ordering: .relaxed) }
  public static var flops: Int { flopCounter.load(ordering: .relaxed) }

}

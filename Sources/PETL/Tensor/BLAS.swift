import CBLAS
import Synchronization

/// Row-major single-precision GEMM wrappers over OpenBLAS. Every matrix in the engine is row-major;
/// HuggingFace linear weights are [out, in], so a linear layer is `Y = X · Wᵀ`.
public enum BLAS {
  /// C[m,n] = alpha * op(A) · op(B) + beta * C, with op given by the transpose flags.
  /// `lda`, `ldb`, `ldc` are row strides (elements), defaulting to the dense ones.
  @inline(__always)
  public static func gemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
    b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil
  ) {
    let la = lda ?? (transA ? m : k)
    let lb = ldb ?? (transB ? k : n)
    let lc = ldc ?? n
    countFlops(2 * m * n * k)
    cblas_sgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
      blasint(m), blasint(n), blasint(k), alpha, a, blasint(la), b, blasint(lb), beta, c, blasint(lc))
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

  public static var threads: Int { Int(openblas_get_num_threads()) }

  public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
}

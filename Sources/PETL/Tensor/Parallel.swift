import Dispatch

/// Splits the engine's elementwise work across cores. The worker count follows OpenBLAS's thread
/// count: a process that owns both cores (2 BLAS threads) runs its softmax/GELU/LayerNorm/dropout
/// on both too, and a grid rank with OPENBLAS_NUM_THREADS=1 stays single-threaded. Every kernel
/// splits so that each output element is computed by the same arithmetic, in the same order, as the
/// serial loop (row-wise maps split rows; column reductions split columns), so results do not
/// depend on the worker count. Nothing is allocated per call.
public enum Parallel {
  /// Overrides the worker count (tests compare 1 against several workers); nil follows BLAS.threads.
  nonisolated(unsafe) public static var workerOverride: Int?

  /// Workers the kernels may use.
  @inline(__always)
  public static var workers: Int { workerOverride ?? BLAS.threads }

  /// Maximum workers a workspace provides per-thread scratch for.
  public static var maxWorkers: Int { max(workerOverride ?? 1, BLAS.threads, 2) }

  /// Calls `body(worker, range)` over contiguous chunks of 0..<n, one per worker, each chunk at
  /// least `minChunk` long (serial when that leaves one chunk).
  @inline(__always)
  public static func forRanges(_ n: Int, minChunk: Int = 1, _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
    let w = min(workers, max(1, n / max(minChunk, 1)))
    if w <= 1 { if n > 0 { body(0, 0..<n) }; return }
    DispatchQueue.concurrentPerform(iterations: w) { t in body(t, (n * t / w)..<(n * (t + 1) / w)) }
  }

  /// Like `forRanges` over `count` floats, with chunk boundaries on multiples of 16 (SIMD blocks).
  @inline(__always)
  public static func forFloats(_ count: Int, minChunk: Int = 1 << 14, _ body: (_ lo: Int, _ hi: Int) -> Void) {
    let blocks = (count + 15) / 16
    forRanges(blocks, minChunk: max(1, minChunk / 16)) { _, r in body(r.lowerBound * 16, min(count, r.upperBound * 16)) }
  }

  /// Column chunks of `cols` on multiples of 16, for reductions over rows.
  @inline(__always)
  public static func forColumns(_ cols: Int, rows: Int, _ body: (_ lo: Int, _ hi: Int) -> Void) {
    let blocks = (cols + 15) / 16
    let w = rows * cols >= 1 << 15 ? workers : 1
    let n = min(w, blocks)
    if n <= 1 { body(0, cols); return }
    DispatchQueue.concurrentPerform(iterations: n) { t in
      body(blocks * t / n * 16, min(cols, blocks * (t + 1) / n * 16))
    }
  }

  /// Runs `body` with OpenBLAS limited to one thread (for many small GEMMs issued from several
  /// workers at once), then restores the previous count.
  @inline(__always)
  public static func withSingleThreadedBLAS<R>(_ body: () -> R) -> R {
    let t = BLAS.threads
    if t <= 1 { return body() }
    BLAS.setThreads(1)
    defer { BLAS.setThreads(t) }
    return body()
  }
}

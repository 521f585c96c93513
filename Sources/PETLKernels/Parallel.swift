import CBLAS
import Synchronization

/// Splits the engine's work across cores: GEMMs (in pieces, see `BLAS.gemm`), element-wise kernels
/// and attention pairs all run on one `WorkerPool`, and OpenBLAS stays at one thread so its own
/// spinning workers never compete with ours. The thread count starts as OpenBLAS's own choice
/// (OPENBLAS_NUM_THREADS, else the core count), so the launch scripts' per-rank setting applies, and
/// a grid rank with one thread stays single-threaded. Every element-wise kernel splits so that each
/// output element is computed by the same arithmetic, in the same order, as the serial loop (row-wise
/// maps split rows; column reductions split columns), so results do not depend on the worker count.
/// Nothing is allocated per call.
public enum Parallel {
  /// OpenBLAS's thread count at start-up, read once; OpenBLAS is then held at one thread.
  private static let initialThreads: Int = {
    let n = Int(openblas_get_num_threads())
    openblas_set_num_threads(1)
    return max(1, n)
  }()
  nonisolated(unsafe) private static var requested: Int?
  /// One pool per size ever used (tests switch between worker counts; pools are never torn down).
  private static let pools = Mutex<[Int: WorkerPool]>([:])

  /// Threads of this process's engine (OPENBLAS_NUM_THREADS by default).
  public static var threads: Int { requested ?? initialThreads }

  /// Sets the thread count (the bench's `--threads`, the grid's per-rank share of the cores).
  public static func setThreads(_ n: Int) {
    _ = initialThreads
    requested = max(1, n)
  }

  /// Overrides the worker count (tests compare 1 against several workers); nil follows `threads`.
  nonisolated(unsafe) public static var workerOverride: Int?

  /// Workers the kernels may use.
  @inline(__always)
  public static var workers: Int { workerOverride ?? threads }

  /// Maximum workers a workspace provides per-thread scratch for.
  public static var maxWorkers: Int { max(workerOverride ?? 1, threads, 2) }

  /// Runs body(t) for t in 0..<w, on the pool when it is free, else one after another on the caller
  /// (a nested call from inside a job, or another thread's).
  @inline(__always)
  static func run(_ w: Int, _ body: (Int) -> Void) {
    let size = workers
    let pool = pools.withLock { p in
      if let existing = p[size] { return existing }
      let made = WorkerPool(size: size); p[size] = made; return made
    }
    let ran = pool.run { t in if t < w { body(t) } }
    if !ran { for t in 0..<w { body(t) } }
  }

  /// Calls `body(worker, range)` over contiguous chunks of 0..<n, one per worker, each chunk at
  /// least `minChunk` long (serial when that leaves one chunk).
  @inline(__always)
  public static func forRanges(_ n: Int, minChunk: Int = 1, _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
    let w = min(workers, max(1, n / max(minChunk, 1)))
    if w <= 1 { if n > 0 { body(0, 0..<n) }; return }
    run(w) { t in body(t, (n * t / w)..<(n * (t + 1) / w)) }
  }

  /// Like `forRanges`, but the chunks carry about equal total `cost(i)` (>= 0) rather than equal
  /// counts: for items of uneven size, such as the sequences of a packed batch. Serial when the
  /// total is below `minCost`. Each worker finds its own bounds with one scan of the costs.
  @inline(__always)
  public static func forBalanced(_ n: Int, minCost: Int, cost: (Int) -> Int, _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
    var total = 0
    for i in 0..<n { total += cost(i) }
    let w = min(workers, n, max(1, total / max(minCost, 1)))
    if w <= 1 { if n > 0 { body(0, 0..<n) }; return }
    run(w) { t in
      // item i belongs to the worker whose cost interval holds the cost before it
      let lo = total * t / w, hi = total * (t + 1) / w
      var before = 0, start = n, end = n
      for i in 0..<n {
        if start == n && before >= lo { start = i }
        if before >= hi { end = i; break }
        before += cost(i)
      }
      if start < end { body(t, start..<end) }
    }
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
    run(n) { t in
      body(blocks * t / n * 16, min(cols, blocks * (t + 1) / n * 16))
    }
  }
}

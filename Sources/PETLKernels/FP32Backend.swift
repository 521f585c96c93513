import Foundation
import Synchronization

/// Which library runs a large fp32 product: oneDNN where OpenBLAS is held to a narrower kernel than
/// the CPU has (an AVX-512 CPU with OpenBLAS on an AVX2 kernel such as Haswell, as when
/// `OPENBLAS_CORETYPE` pins it, or when OpenBLAS does not know the CPU), OpenBLAS otherwise.
///
/// Decided by that rule, once, not by timing each process: the two libraries sum in different
/// orders, and a timing that tipped the other way in another process (a resumed grid, another rank,
/// a busy machine) would change a cell's last bits, so resumed cells would not be the ones
/// interrupted. `swift-petl bench` times both libraries on every shape the step used and prints them
/// beside the choice (`report`), so the rule is checked where it matters.
public enum FP32Backend {
  /// oneDNN's kernels are AVX-512 here and OpenBLAS's are not.
  public static let usesOneDNN: Bool = {
    guard OneDNN.startError == nil else { return false }
    let flags = BLASCore.cpuFlags()
    let avx512 = ["avx512f", "avx512bw", "avx512vl"].allSatisfy(flags.contains)
    let blasAVX512 = ["skylakex", "cooperlake", "sapphirerapids"].contains(BLAS.coreName.lowercased())
    return avx512 && !blasAVX512 && OneDNN.isa.hasPrefix("avx512")
  }()

  /// One line: which library and why.
  public static var reason: String {
    usesOneDNN ? "oneDNN (\(OneDNN.isa)): OpenBLAS runs its \(BLAS.coreName) kernel on an AVX-512 CPU"
      : "OpenBLAS (\(BLAS.coreName))" + (OneDNN.startError.map { "; oneDNN unavailable: \($0)" } ?? "")
  }

  /// A product's shape for the report: the transposes and the two dimensions that are not the token
  /// count (n and k for `X · Wᵀ` and `dY · W`, m and n for a weight gradient `dYᵀ · X`).
  struct Shape: Hashable, CustomStringConvertible {
    let transA: Bool, transB: Bool
    let d1: Int, d2: Int
    var description: String { "\(transA ? "T" : "N")\(transB ? "T" : "N") \(d1)x\(d2)" }
  }

  private static let seen = Mutex<Set<Shape>>([])

  /// Notes a large product's shape (for `report`).
  @inline(__always)
  static func note(transA: Bool, transB: Bool, m: Int, n: Int, k: Int) {
    let s = transA ? Shape(transA: true, transB: transB, d1: m, d2: n) : Shape(transA: false, transB: transB, d1: n, d2: k)
    seen.withLock { _ = $0.insert(s) }
  }

  /// Times both libraries (best of three, `tokens` tokens) on every shape noted so far: one line each.
  public static func report(tokens: Int = 4096) -> [String] {
    seen.withLock { $0 }.sorted { $0.description < $1.description }.map { s in
      let (m, n, k) = s.transA ? (s.d1, s.d2, tokens) : (tokens, s.d1, s.d2)
      let (blas, dnnl) = measure(transA: s.transA, transB: s.transB, m: m, n: n, k: k)
      return String(format: "%@: OpenBLAS %.2f ms, oneDNN %.2f ms (%.2fx)", s.description as NSString, blas * 1e3, dnnl * 1e3, blas / dnnl)
    }
  }

  /// The best of three runs of each library on scratch operands of this size (seconds).
  private static func measure(transA: Bool, transB: Bool, m: Int, n: Int, k: Int) -> (Double, Double) {
    let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k), b = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    for i in 0..<(m * k) { a[i] = Float(i % 7) * 0.125 - 0.375 }
    for i in 0..<(k * n) { b[i] = Float(i % 5) * 0.25 - 0.5 }
    func best(_ run: () -> Void) -> Double {
      var t = Double.infinity
      for _ in 0..<3 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        run()
        t = min(t, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
      }
      return t
    }
    let flops = BLAS.flops
    let blas = best { BLAS.openBLAS(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, b: b, beta: 0, c: c) }
    let dnnl = OneDNN.startError == nil ? best { Matmul.f32(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b, c: c) } : .nan
    BLAS.flopCounter.store(flops, ordering: .relaxed)  // the trial runs are not the caller's work
    return (blas, dnnl)
  }
}

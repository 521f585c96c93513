import Foundation
import Synchronization

/// Which library runs a large fp32 product: OpenBLAS or oneDNN, whichever is faster for its shape on
/// this machine, measured once per shape the first time it runs and kept for the process. (Where
/// OpenBLAS is pinned to a narrower kernel than the CPU has, e.g. Haswell's AVX2 on an AVX-512 CPU,
/// oneDNN's AVX-512 kernel can be twice as fast; elsewhere OpenBLAS often wins.)
///
/// A shape is the transposes and the two dimensions that are not the token count (the token count
/// changes from batch to batch): n and k for `X · Wᵀ` and `dY · W`, m and n for a weight gradient
/// `dYᵀ · X`. oneDNN must be at least `margin` times faster to be chosen, so that two runs on one
/// machine choose alike (the libraries sum in different orders: results differ in the last bits).
public enum FP32Backend {
  struct Shape: Hashable, CustomStringConvertible {
    let transA: Bool, transB: Bool
    let d1: Int, d2: Int
    var description: String { "\(transA ? "T" : "N")\(transB ? "T" : "N") \(d1)x\(d2)" }
  }

  struct Choice: Sendable {
    let oneDNN: Bool
    let openBLASSeconds: Double, oneDNNSeconds: Double
  }

  public static let margin = 1.2
  static let measuredTokens = 1024
  private static let choices = Mutex<[Shape: Choice]>([:])

  static func shape(transA: Bool, transB: Bool, m: Int, n: Int, k: Int) -> Shape {
    transA ? Shape(transA: true, transB: transB, d1: m, d2: n) : Shape(transA: false, transB: transB, d1: n, d2: k)
  }

  /// Whether oneDNN runs this product; measures the shape on first sight, on scratch operands (the
  /// caller's C is untouched) with at least `measuredTokens` tokens (a [CLS]-only layer's 32 rows
  /// would time call overheads, not the kernels the full layers use).
  static func usesOneDNN(transA: Bool, transB: Bool, m: Int, n: Int, k: Int) -> Bool {
    guard OneDNN.startError == nil else { return false }
    let s = shape(transA: transA, transB: transB, m: m, n: n, k: k)
    if let c = choices.withLock({ $0[s] }) { return c.oneDNN }
    let t = measuredTokens
    let c = transA ? measure(transA: true, transB: transB, m: m, n: n, k: max(k, t))
      : measure(transA: false, transB: transB, m: max(m, t), n: n, k: k)
    return choices.withLock { cache in
      if let existing = cache[s] { return existing.oneDNN }
      cache[s] = c
      return c.oneDNN
    }
  }

  /// The best of three runs of each library on operands of this size.
  private static func measure(transA: Bool, transB: Bool, m: Int, n: Int, k: Int) -> Choice {
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
    let dnnl = best { Matmul.f32(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b, c: c) }
    BLAS.flopCounter.store(flops, ordering: .relaxed)  // the trial runs are not the caller's work
    return Choice(oneDNN: dnnl * margin <= blas, openBLASSeconds: blas, oneDNNSeconds: dnnl)
  }

  /// One line per shape measured so far: which library runs it and the times that decided.
  static var report: [String] {
    choices.withLock { c in
      c.sorted { $0.key.description < $1.key.description }.map { s, ch in
        String(format: "%@: %@ (OpenBLAS %.2f ms, oneDNN %.2f ms)", s.description as NSString,
               (ch.oneDNN ? "oneDNN" : "OpenBLAS") as NSString, ch.openBLASSeconds * 1e3, ch.oneDNNSeconds * 1e3)
      }
    }
  }
}

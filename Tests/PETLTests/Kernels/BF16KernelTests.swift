import XCTest
@testable import PETLKernels

/// The bf16 kernel layer: rounding (bit for bit the nearest-even rule PyTorch uses) and the oneDNN
/// products (every transpose, leading dimension, bias, alpha and beta, split or not, batched) against
/// a double-precision product of the same bf16 inputs.
final class BF16KernelTests: XCTestCase {
  override func tearDown() { Parallel.workerOverride = nil }

  /// The nearest bf16 by exact arithmetic: of the two neighbours, the closer; on a tie the even one.
  static func nearestEven(_ x: Float) -> UInt16 {
    if x.isNaN { return 0x7FC0 }
    if x.isInfinite { return UInt16(x.bitPattern >> 16) }
    let lo = UInt16(x.bitPattern >> 16)
    // the neighbour one bf16 step further from zero; past the largest finite one that is ±2¹²⁸
    let next = UInt32(lo & 0x7FFF) + 1 == 0x7F80 ? (x < 0 ? -0x1p128 : 0x1p128) : Double(Float(bitPattern: (UInt32(lo) + 1) << 16))
    let dx = Double(x), da = abs(dx - Double(BFloat16.float(lo))), db = abs(next - dx)
    return da < db || (da == db && lo & 1 == 0) ? lo : lo + 1
  }

  func testRoundingIsNearestEven() {
    var values: [Float] = [0, -0, 1, -1, .infinity, -.infinity, .nan, Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude,
                           .leastNonzeroMagnitude, .leastNormalMagnitude, 1 + 1 / 256, 1 + 3 / 256, 1 + 1 / 512, 1 + 3 / 512,
                           Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_7FFF),
                           Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x807F_FFFF), Float(bitPattern: 0x7F7F_8000)]
    var rng = SeededGenerator(seed: 5)
    for _ in 0..<20_000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
    for _ in 0..<5_000 { values.append(Float(bitPattern: (UInt32(truncatingIfNeeded: rng.next()) & 0xFFFF_0000) | 0x8000)) }  // ties
    var vector = [BF16](repeating: 0, count: values.count)
    values.withUnsafeBufferPointer { s in vector.withUnsafeMutableBufferPointer { BFloat16.convertParallel(s.baseAddress!, $0.baseAddress!, count: values.count) } }
    for (i, x) in values.enumerated() {
      let want = Self.nearestEven(x)
      XCTAssertEqual(BFloat16.round(x), want, "scalar \(x) (0x\(String(x.bitPattern, radix: 16)))")
      XCTAssertEqual(vector[i], want, "vector \(x) (0x\(String(x.bitPattern, radix: 16)))")
      if !x.isNaN { XCTAssertEqual(BFloat16.rounded(F16x(repeating: x))[0].bitPattern, UInt32(want) << 16) }
    }
  }

  /// Skips (with the reason printed by XCTest) where oneDNN cannot compute bf16.
  static func requireBF16() throws {
    guard OneDNN.computesBF16 else {
      throw XCTSkip("oneDNN \(OneDNN.version) cannot compute bf16 on this CPU (isa \(OneDNN.isa); it needs AVX-512): \(OneDNN.startError ?? "no bf16 matmul")")
    }
  }

  func randomBF16(_ n: Int, _ rng: inout SeededGenerator) -> [BF16] { (0..<n).map { _ in BFloat16.round(rng.normal()) } }

  /// C = alpha op(A) op(B) (+ bias) + beta C in Double from the bf16 values; also Σ|alpha a b| per entry
  /// (the scale of fp32 accumulation error).
  func reference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int, b: [Float], ldb: Int,
                 beta: Float, c: [Float], ldc: Int, bias: [Float]?) -> ([Double], [Double]) {
    var out = [Double](repeating: 0, count: m * ldc), mag = out
    for i in 0..<m {
      for j in 0..<n {
        var s = 0.0, t = 0.0
        for p in 0..<k {
          let x = Double(transA ? a[p * lda + i] : a[i * lda + p]), y = Double(transB ? b[j * ldb + p] : b[p * ldb + j])
          s += x * y; t += abs(x * y)
        }
        out[i * ldc + j] = Double(alpha) * s + Double(beta) * Double(c[i * ldc + j]) + Double(bias?[j] ?? 0)
        mag[i * ldc + j] = abs(Double(alpha)) * t + abs(Double(c[i * ldc + j])) + abs(Double(bias?[j] ?? 0))
      }
    }
    return (out, mag)
  }

  /// fp32 accumulation of k products: each entry within k·2⁻²³ of its Σ|terms| (a loose form of the
  /// standard bound k·u·Σ|ab|, u = 2⁻²⁴), plus the final rounding.
  func check(_ got: [Float], _ want: [Double], _ mag: [Double], m: Int, n: Int, ldc: Int, k: Int, _ label: String) {
    let u = Double(k + 2) * 0x1p-23
    for i in 0..<m {
      for j in 0..<n {
        let e = abs(Double(got[i * ldc + j]) - want[i * ldc + j])
        if e > u * mag[i * ldc + j] + 1e-30 { XCTFail("\(label): C[\(i),\(j)] = \(got[i * ldc + j]), want \(want[i * ldc + j])"); return }
      }
    }
  }

  func testProductsMatchDoubleReference() throws {
    try Self.requireBF16()
    var rng = SeededGenerator(seed: 9)
    // every variant small (one call); the large ones (split across two workers, by rows or by
    // columns) with a bias and accumulation
    var cases: [(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, alpha: Float, beta: Float, bias: Bool, workers: Int)] = []
    for transA in [false, true] {
      for transB in [false, true] {
        for (alpha, beta, bias) in [(Float(1), Float(0), false), (0.125, 1, false), (1, 0, true), (1, 1, true)] {
          cases.append((37, 45, 29, transA, transB, alpha, beta, bias, 1))
        }
        for (m, n) in [(300, 96), (96, 300)] { cases.append((m, n, 80, transA, transB, 1, 1, true, 2)) }
      }
    }
    for t in cases {
      Parallel.workerOverride = t.workers
      let (m, n, k) = (t.m, t.n, t.k)
      let lda = (t.transA ? m : k) + 3, ldb = (t.transB ? k : n) + 5, ldc = n + 2
      let a = randomBF16((t.transA ? k : m) * lda, &rng), b = randomBF16((t.transB ? n : k) * ldb, &rng)
      let c0 = (0..<(m * ldc)).map { _ in rng.normal() }
      let bv = (0..<n).map { _ in rng.normal() }
      let af = a.map(BFloat16.float), bf = b.map(BFloat16.float)
      let (want, mag) = reference(transA: t.transA, transB: t.transB, m: m, n: n, k: k, alpha: t.alpha, a: af, lda: lda,
                                  b: bf, ldb: ldb, beta: t.beta, c: c0, ldc: ldc, bias: t.bias ? bv : nil)
      var c = c0, cf = c0
      bv.withUnsafeBufferPointer { bp in
        Matmul.bf16(transA: t.transA, transB: t.transB, m: m, n: n, k: k, alpha: t.alpha, a: a, lda: lda, b: b, ldb: ldb,
                    beta: t.beta, c: &c, ldc: ldc, bias: t.bias ? bp.baseAddress : nil)
        // fp32 on oneDNN, the same values as floats
        Matmul.f32(transA: t.transA, transB: t.transB, m: m, n: n, k: k, alpha: t.alpha, a: af, lda: lda, b: bf, ldb: ldb,
                   beta: t.beta, c: &cf, ldc: ldc, bias: t.bias ? bp.baseAddress : nil)
      }
      let label = "\(m)x\(n)x\(k) tA \(t.transA) tB \(t.transB) alpha \(t.alpha) beta \(t.beta) bias \(t.bias) workers \(t.workers)"
      check(c, want, mag, m: m, n: n, ldc: ldc, k: k, "bf16 " + label)
      check(cf, want, mag, m: m, n: n, ldc: ldc, k: k, "f32 " + label)
      if t.beta == 0 {
        // a bf16 C is the fp32 C rounded to nearest even, bit for bit
        var cb = [BF16](repeating: 0, count: m * ldc)
        bv.withUnsafeBufferPointer { bp in
          Matmul.bf16(transA: t.transA, transB: t.transB, m: m, n: n, k: k, alpha: t.alpha, a: a, lda: lda, b: b, ldb: ldb,
                      rounded: &cb, ldc: ldc, bias: t.bias ? bp.baseAddress : nil)
        }
        let wrong = (0..<m).flatMap { i in (0..<n).map { i * ldc + $0 } }.filter { cb[$0] != BFloat16.round(c[$0]) }
        XCTAssertTrue(wrong.isEmpty, "bf16 C \(label): \(wrong.count) entries not round(fp32 C)")
      }
    }
  }

  /// Attention's shapes: heads as the batch, q, k, v a column block of packed [len, hidden] rows each,
  /// the probabilities [heads, len, len]: S = αQKᵀ, ctx = PV, dv += Pᵀ dctx.
  func testBatchedProductsMatchDoubleReference() throws {
    try Self.requireBF16()
    var rng = SeededGenerator(seed: 10)
    let heads = 3, d = 8, H = heads * d, len = 13
    let q = randomBF16(len * H, &rng), kv = randomBF16(len * H, &rng), p = randomBF16(heads * len * len, &rng)
    // (transA, transB, A, lda, strideA, m, n, k, alpha, beta)
    let cases: [(Bool, Bool, [BF16], Int, Int, Int, Int, Int, Float, Float)] = [
      (false, true, q, H, d, len, len, d, 0.35, 0),
      (false, false, p, len, len * len, len, d, len, 1, 0),
      (true, false, p, len, len * len, len, d, len, 1, 1),
    ]
    for (transA, transB, a, lda, strideA, m, n, k, alpha, beta) in cases {
      let c0 = (0..<(heads * m * n)).map { _ in rng.normal() }
      var c = c0
      Matmul.batchedBF16(batch: heads, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, strideA: strideA,
                         b: kv, ldb: H, strideB: d, beta: beta, c: &c, ldc: n, strideC: m * n)
      if beta == 0 {
        var cb = [BF16](repeating: 0, count: heads * m * n)
        Matmul.batchedBF16(batch: heads, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                           strideA: strideA, b: kv, ldb: H, strideB: d, rounded: &cb, ldc: n, strideC: m * n)
        XCTAssertEqual(cb, c.map(BFloat16.round), "batched bf16 C is the fp32 C rounded")
      }
      for h in 0..<heads {
        let aH = Array(a[(h * strideA)...]).map(BFloat16.float), bH = Array(kv[(h * d)...]).map(BFloat16.float)
        let block = (h * m * n)..<((h + 1) * m * n)
        let (want, mag) = reference(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: aH, lda: lda, b: bH, ldb: H,
                                    beta: beta, c: Array(c0[block]), ldc: n, bias: nil)
        check(Array(c[block]), want, mag, m: m, n: n, ldc: n, k: k, "batched tA \(transA) tB \(transB) head \(h)")
      }
    }
  }
}

import CDNNL

/// Matrix products on oneDNN: bf16 inputs with fp32 accumulation and an fp32 (or bf16) result, or
/// fp32 throughout. Row-major like `BLAS.gemm`, with the same transposes and leading dimensions.
///
/// A product of the engine's size is cut into one block of C per worker, exactly as `BLAS.gemm`
/// cuts it for OpenBLAS (rows of C when A's rows are the tokens, the longer side of C for a weight
/// gradient), and each block is one single-threaded oneDNN call: the engine's workers are the only
/// threads (see `OneDNN`). Each element of C is one dot product whatever the split.
public enum Matmul {
  public enum Element: String, Sendable, Hashable {
    case f32, bf16
    var dnnl: dnnl_data_type_t { self == .f32 ? dnnl_f32 : dnnl_bf16 }
    var bytes: Int { self == .f32 ? 4 : 2 }
  }

  /// What a primitive is made for: the rank (2, or 3 for a batch of products), which operands are
  /// transposed, the input and output types, and its attributes. Shapes and leading dimensions are
  /// not part of it (runtime values).
  struct Kind: Hashable, Sendable, CustomStringConvertible {
    var ndims = 2
    var transA = false, transB = false
    var input: Element
    var output: Element = .f32
    var accumulate = false
    var bias = false
    var scale = false
    var description: String {
      "\(ndims)-d \(transA ? "T" : "N")\(transB ? "T" : "N") \(input)x\(input)->\(output)" + (accumulate ? " +=" : "") + (bias ? " +bias" : "") + (scale ? " *alpha" : "")
    }
  }

  /// C[m,n] = alpha · op(A) · op(B) (+ bias[n]) + beta · C with beta 0 or 1, bf16 A and B, fp32 C;
  /// split across the workers like `BLAS.gemm`.
  public static func bf16(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                          a: UnsafePointer<BF16>, lda: Int? = nil, b: UnsafePointer<BF16>, ldb: Int? = nil,
                          beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil, bias: UnsafePointer<Float>? = nil) {
    split(.bf16, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: UnsafeRawPointer(a), lda: lda,
          b: UnsafeRawPointer(b), ldb: ldb, beta: beta, c: UnsafeMutableRawPointer(c), output: .f32, ldc: ldc, bias: bias)
  }

  /// `bf16` with a bf16 C: the fp32 sum (plus bias) rounded once, to nearest even (for a product
  /// whose only reader is another bf16 product). No accumulation into C.
  public static func bf16(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                          a: UnsafePointer<BF16>, lda: Int? = nil, b: UnsafePointer<BF16>, ldb: Int? = nil,
                          rounded c: UnsafeMutablePointer<BF16>, ldc: Int? = nil, bias: UnsafePointer<Float>? = nil) {
    split(.bf16, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: UnsafeRawPointer(a), lda: lda,
          b: UnsafeRawPointer(b), ldb: ldb, beta: 0, c: UnsafeMutableRawPointer(c), output: .bf16, ldc: ldc, bias: bias)
  }

  /// The fp32 product on oneDNN (what `BLAS.gemm` runs where oneDNN's fp32 kernel is the faster).
  public static func f32(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                         a: UnsafePointer<Float>, lda: Int? = nil, b: UnsafePointer<Float>, ldb: Int? = nil,
                         beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil, bias: UnsafePointer<Float>? = nil) {
    split(.f32, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: UnsafeRawPointer(a), lda: lda,
          b: UnsafeRawPointer(b), ldb: ldb, beta: beta, c: UnsafeMutableRawPointer(c), output: .f32, ldc: ldc, bias: bias)
  }

  @inline(__always)
  static func split(_ input: Element, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                    a: UnsafeRawPointer, lda: Int?, b: UnsafeRawPointer, ldb: Int?, beta: Float,
                    c: UnsafeMutableRawPointer, output: Element, ldc: Int?, bias: UnsafePointer<Float>?) {
    precondition(beta == 0 || beta == 1, "Matmul: beta must be 0 or 1")
    let la = lda ?? (transA ? m : k), lb = ldb ?? (transB ? k : n), lc = ldc ?? n
    let size = input.bytes, csize = output.bytes
    BLAS.countFlops(2 * m * n * k)
    let w = Parallel.workers
    func block(_ m: Int, _ n: Int, _ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ c: UnsafeMutableRawPointer,
               _ bias: UnsafePointer<Float>?) {
      product(input: input, output: output, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: la,
              b: b, ldb: lb, accumulate: beta == 1, c: c, ldc: lc, bias: bias)
    }
    guard w > 1, m * n * k >= BLAS.splitThreshold else { block(m, n, a, b, c, bias); return }
    if !transA || m >= n {
      let blocks = (m + 15) / 16
      Parallel.forRanges(blocks) { _, r in
        let r0 = r.lowerBound * 16, r1 = min(m, r.upperBound * 16)
        guard r1 > r0 else { return }
        block(r1 - r0, n, a + (transA ? r0 : r0 * la) * size, b, c + r0 * lc * csize, bias)
      }
    } else {
      let blocks = (n + 15) / 16
      Parallel.forRanges(blocks) { _, r in
        let c0 = r.lowerBound * 16, c1 = min(n, r.upperBound * 16)
        guard c1 > c0 else { return }
        block(m, c1 - c0, a, b + (transB ? c0 * lb : c0) * size, c + c0 * csize, bias.map { $0 + c0 })
      }
    }
  }

  /// One product on the calling thread: C[m,n] = alpha · op(A) · op(B) (+ bias) (+ C).
  @inline(__always)
  static func product(input: Element, output: Element = .f32, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                      alpha: Float, a: UnsafeRawPointer, lda: Int, b: UnsafeRawPointer, ldb: Int, accumulate: Bool,
                      c: UnsafeMutableRawPointer, ldc: Int, bias: UnsafePointer<Float>?) {
    guard m > 0, n > 0 else { return }
    let ta = tensor(input, (Int64(m), Int64(k), 0), transA ? (1, Int64(lda), 0) : (Int64(lda), 1, 0), a)
    let tb = tensor(input, (Int64(k), Int64(n), 0), transB ? (1, Int64(ldb), 0) : (Int64(ldb), 1, 0), b)
    let tc = tensor(output, (Int64(m), Int64(n), 0), (Int64(ldc), 1, 0), UnsafeRawPointer(c))
    execute(Kind(ndims: 2, transA: transA, transB: transB, input: input, output: output, accumulate: accumulate,
                 bias: bias != nil, scale: alpha != 1),
            ta, tb, tc, bias: bias, biasCount: n, alpha: alpha)
  }

  /// A batch of products on the calling thread: C_i[m,n] = alpha · op(A_i) · op(B_i) (+ C_i) for
  /// i < batch, operand i at `stride` elements after operand i-1 (attention: one head per product).
  public static func batchedBF16(batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                                 a: UnsafePointer<BF16>, lda: Int, strideA: Int, b: UnsafePointer<BF16>, ldb: Int, strideB: Int,
                                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, strideC: Int) {
    batched(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, strideA: strideA,
            b: b, ldb: ldb, strideB: strideB, beta: beta, c: UnsafeMutableRawPointer(c), output: .f32, ldc: ldc, strideC: strideC)
  }

  /// `batchedBF16` with bf16 C (each sum rounded once; no accumulation).
  public static func batchedBF16(batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                                 a: UnsafePointer<BF16>, lda: Int, strideA: Int, b: UnsafePointer<BF16>, ldb: Int, strideB: Int,
                                 rounded c: UnsafeMutablePointer<BF16>, ldc: Int, strideC: Int) {
    batched(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, strideA: strideA,
            b: b, ldb: ldb, strideB: strideB, beta: 0, c: UnsafeMutableRawPointer(c), output: .bf16, ldc: ldc, strideC: strideC)
  }

  private static func batched(batch: Int, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                              a: UnsafePointer<BF16>, lda: Int, strideA: Int, b: UnsafePointer<BF16>, ldb: Int, strideB: Int,
                              beta: Float, c: UnsafeMutableRawPointer, output: Element, ldc: Int, strideC: Int) {
    precondition(beta == 0 || beta == 1, "Matmul: beta must be 0 or 1")
    guard batch > 0, m > 0, n > 0 else { return }
    BLAS.countFlops(2 * batch * m * n * k)
    let B = Int64(batch)
    let ta = tensor(.bf16, (B, Int64(m), Int64(k)), transA ? (Int64(strideA), 1, Int64(lda)) : (Int64(strideA), Int64(lda), 1), a)
    let tb = tensor(.bf16, (B, Int64(k), Int64(n)), transB ? (Int64(strideB), 1, Int64(ldb)) : (Int64(strideB), Int64(ldb), 1), b)
    let tc = tensor(output, (B, Int64(m), Int64(n)), (Int64(strideC), Int64(ldc), 1), UnsafeRawPointer(c))
    execute(Kind(ndims: 3, transA: transA, transB: transB, input: .bf16, output: output, accumulate: beta == 1, scale: alpha != 1),
            ta, tb, tc, bias: nil, biasCount: 0, alpha: alpha)
  }

  @inline(__always)
  private static func tensor(_ e: Element, _ dims: (Int64, Int64, Int64), _ strides: (Int64, Int64, Int64),
                             _ data: UnsafeRawPointer) -> petl_tensor {
    petl_tensor(dims: dims, strides: strides, type: e.dnnl, data: data)
  }

  private static func execute(_ kind: Kind, _ a: petl_tensor, _ b: petl_tensor, _ c: petl_tensor,
                              bias: UnsafePointer<Float>?, biasCount: Int, alpha: Float) {
    let p: OneDNN.Primitive
    do { p = try OneDNN.primitive(kind) } catch { fatalError("\(error)") }
    guard let engine = OneDNN.engine else { fatalError("oneDNN: no engine") }
    OneDNN.holdToOneThread()
    var a = a, b = b, c = c
    let status = withUnsafePointer(to: alpha) { scale in
      petl_matmul_execute(p.handle, engine, OneDNN.stream(), Int32(kind.ndims), &a, &b, &c, bias, Int64(biasCount),
                          kind.scale ? scale : nil)
    }
    guard status == dnnl_success else {
      fatalError("oneDNN \(kind) matmul failed (status \(status.rawValue)): dims \(a.dims) x \(b.dims) -> \(c.dims)")
    }
  }
}

import CDNNL
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// oneDNN, the library PyTorch's CPU bf16 path runs on: one CPU engine, matmul primitives made once
/// and kept, a stream per calling thread.
///
/// Threads: Debian builds oneDNN on OpenMP. Left alone, every call from one of the engine's workers
/// would start an OpenMP team of its own beside the `WorkerPool` (and OpenMP's idle workers spin), so
/// each call is pinned to one thread (`omp_set_num_threads(1)` on the calling thread) and the engine
/// splits a large product across its own workers (`Matmul`), as it does for OpenBLAS.
public enum OneDNN {
  /// The CPU engine; nil when oneDNN could not create one (`startError` says why).
  nonisolated(unsafe) static let engine: dnnl_engine_t? = {
    var e: dnnl_engine_t?
    return dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success ? e : nil
  }()

  /// `omp_set_num_threads` of the OpenMP runtime oneDNN loaded (nil for a sequential build).
  private static let setOpenMPThreads: (@convention(c) (Int32) -> Void)? = {
    guard petl_dnnl_cpu_runtime() == petl_dnnl_runtime_omp(), let f = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_num_threads")
    else { return nil }
    return unsafeBitCast(f, to: (@convention(c) (Int32) -> Void).self)
  }()

  /// Why oneDNN cannot run here, nil when it can: no engine, or a threading runtime the engine cannot
  /// hold to one thread per call (TBB, a thread pool).
  public static let startError: String? = {
    guard engine != nil else { return "oneDNN could not create a CPU engine" }
    let rt = petl_dnnl_cpu_runtime()
    if rt == petl_dnnl_runtime_seq() { return nil }
    if rt == petl_dnnl_runtime_omp() {
      return setOpenMPThreads == nil ? "oneDNN runs on OpenMP but omp_set_num_threads was not found" : nil
    }
    return "oneDNN was built with CPU runtime \(rt); swift-petl needs its OpenMP or sequential build"
  }()

  /// The oneDNN version, e.g. "2.6.3".
  public static var version: String {
    let v = dnnl_version()!.pointee
    return "\(v.major).\(v.minor).\(v.patch)"
  }

  /// The instruction set oneDNN's kernels use on this CPU (capped by DNNL_MAX_CPU_ISA).
  public static var isa: String {
    switch dnnl_get_effective_cpu_isa() {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
    case dnnl_cpu_isa_avx512_core: return "avx512_core"
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
    case dnnl_cpu_isa_avx2: return "avx2"
    case dnnl_cpu_isa_avx: return "avx"
    case dnnl_cpu_isa_sse41: return "sse41"
    default: return "other"
    }
  }

  /// oneDNN can compute a bf16 product here: with the bf16 instructions, or (oneDNN 2.x) by
  /// emulating them on AVX-512; not on AVX2 alone. Checked by creating the primitive.
  public static let computesBF16: Bool = startError == nil && (try? primitive(Matmul.Kind(ndims: 2, transB: true, input: .bf16, bias: true))) != nil

  /// Runs every oneDNN call on the calling thread alone (see the type's comment).
  @inline(__always)
  static func holdToOneThread() { setOpenMPThreads?(1) }

  // MARK: streams, one per thread (a oneDNN stream is not for concurrent use)

  private static let streamKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { p in
      if let p { dnnl_stream_destroy(OpaquePointer(p)) }
    }
    return key
  }()

  static func stream() -> dnnl_stream_t {
    if let s = pthread_getspecific(streamKey) { return OpaquePointer(s) }
    var s: dnnl_stream_t?
    guard let engine, dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let s else {
      fatalError("oneDNN: could not create a stream")
    }
    pthread_setspecific(streamKey, UnsafeRawPointer(s))
    return s
  }

  // MARK: primitives, one per kind, never destroyed

  struct Primitive: @unchecked Sendable {
    let handle: dnnl_primitive_t
    var implementation: String { String(cString: petl_matmul_impl(handle)) }
  }

  private static let primitives = Mutex<[Matmul.Kind: Primitive]>([:])

  /// The matmul primitive of `kind`, created on first use (shapes are runtime values, so a kind
  /// serves every product of its types).
  static func primitive(_ kind: Matmul.Kind) throws -> Primitive {
    if let p = primitives.withLock({ $0[kind] }) { return p }
    guard startError == nil, let engine else { throw MatmulError(startError ?? "oneDNN unavailable") }
    holdToOneThread()
    var handle: dnnl_primitive_t?
    let status = petl_matmul_create(&handle, engine, Int32(kind.ndims), kind.transA ? 1 : 0, kind.transB ? 1 : 0,
                                    kind.input.dnnl, kind.output.dnnl,
                                    kind.accumulate ? 1 : 0, kind.bias ? 1 : 0, kind.scale ? 1 : 0)
    guard status == dnnl_success, let handle else {
      throw MatmulError("oneDNN \(version) cannot create a \(kind) matmul on this CPU (isa \(isa), status \(status.rawValue))")
    }
    let p = Primitive(handle: handle)
    // oneDNN's reference matmul (scalar C++, what it falls back to without a kernel) is hundreds of
    // times slower than its GEMM: no kernel counts as no support.
    guard !p.implementation.hasPrefix("ref") else {
      dnnl_primitive_destroy(handle)
      throw MatmulError("oneDNN \(version) has only its reference \(kind) matmul on this CPU (isa \(isa))")
    }
    return primitives.withLock { cache in
      if let existing = cache[kind] { dnnl_primitive_destroy(handle); return existing }
      cache[kind] = p
      return p
    }
  }

  /// oneDNN's implementations of the primitives made so far, e.g. "gemm:jit" (for the bench).
  public static var implementations: [String] {
    Set(primitives.withLock { $0.values.map(\.implementation) }).sorted()
  }
}

public struct MatmulError: Error, CustomStringConvertible {
  public let description: String
  init(_ d: String) { description = d }
}

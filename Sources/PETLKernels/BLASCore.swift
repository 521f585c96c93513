import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Keeps OpenBLAS off its slow generic kernels. OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know recent
/// Xeons (e.g. model 0xCF) and falls back to Prescott (SSE3, several times slower GEMM). It picks the kernel in
/// a library constructor, so `OPENBLAS_CORETYPE` must be in the environment when the process starts:
/// `ensureFastKernel` sets it from the CPU flags and re-executes the process once (execv keeps the
/// pid, so mpirun does not notice). A user-set `OPENBLAS_CORETYPE` is never overridden.
public enum BLASCore {
  /// Cores OpenBLAS falls back to when it does not recognise the CPU.
  public static let genericCores: Set<String> = [
    "prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn", "dunnington",
    "atom", "nehalem", "unknown",
  ]
  /// Set in the re-executed process so it never loops.
  public static let markerVariable = "SWIFT_PETL_BLAS_REEXEC"

  public static func isGeneric(_ core: String) -> Bool { genericCores.contains(core.lowercased()) }

  /// The fast kernel for a CPU with these /proc/cpuinfo flags, nil when none applies.
  public static func preferredCore(flags: Set<String>) -> String? {
    if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { return "SkylakeX" }
    if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
    if flags.contains("avx") { return "Sandybridge" }
    return nil
  }

  public static func cpuFlags() -> Set<String> {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
    for line in text.split(separator: "\n") where line.hasPrefix("flags") {
      guard let colon = line.firstIndex(of: ":") else { continue }
      return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
    return []
  }

  /// Call first thing in `main` with the process's arguments (the re-exec passes them on). Returns
  /// only when no re-exec was needed (or it failed).
  public static func ensureFastKernel(arguments: [String]) {
    let env = ProcessInfo.processInfo.environment
    let core = BLAS.coreName
    guard env["OPENBLAS_CORETYPE"] == nil, isGeneric(core) else { return }
    guard env[markerVariable] == nil else {
      FileHandle.standardError.write(Data("swift-petl: WARNING: OpenBLAS still uses the generic '\(core)' kernel after re-exec; GEMMs will be slow\n".utf8))
      return
    }
    guard let want = preferredCore(flags: cpuFlags()) else { return }
    FileHandle.standardError.write(Data("swift-petl: OpenBLAS picked the generic '\(core)' kernel; re-executing with OPENBLAS_CORETYPE=\(want)\n".utf8))
    setenv("OPENBLAS_CORETYPE", want, 1)
    setenv(markerVariable, "1", 1)
    var cargs: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
    cargs.append(nil)
    // Handlers do not survive an exec, a blocked signal stays pending across it: the new image
    // receives a stop request sent meanwhile once it has installed its own handlers. (`StopSignal`
    // has blocked them already; a failed exec leaves the mask as it was.)
    var stops = sigset_t(), before = sigset_t()
    sigemptyset(&stops)
    for sig in [SIGUSR1, SIGTERM, SIGINT] { sigaddset(&stops, sig) }
    pthread_sigmask(SIG_BLOCK, &stops, &before)
    execv("/proc/self/exe", &cargs)
    pthread_sigmask(SIG_SETMASK, &before, nil)
    // execv returned: it failed; carry on with the slow kernel.
    FileHandle.standardError.write(Data("swift-petl: re-exec failed (errno \(errno)); continuing with '\(core)'\n".utf8))
  }
}

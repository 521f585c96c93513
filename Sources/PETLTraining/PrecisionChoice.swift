import PETLKernels
import PETLSupport

/// What `--precision` asks for: a precision, or `auto` (bf16 where every rank's CPU has bf16 dot
/// products, else fp32). The default stays fp32.
public enum PrecisionRequest: String, CaseIterable, Sendable {
  case fp32, bf16, auto
}

/// How a `--precision` request becomes the engine's precision, with the reason printed beside it.
public struct PrecisionChoice: Sendable, Equatable {
  public let precision: Precision
  /// One line: what was chosen and why.
  public let why: String

  /// This CPU and this oneDNN, decided alone (`bf16HardwareInstructions`: the CPU's bf16 dot-product
  /// flags; `oneDNNComputesBF16`: oneDNN can run a bf16 product here). bf16 on a CPU without the
  /// instructions is an error naming them: oneDNN 2.x would emulate them on plain AVX-512, several
  /// times slower than fp32.
  public static func local(_ request: PrecisionRequest, instructions: [String] = BF16Hardware.instructions(),
                           oneDNNComputesBF16: @autoclosure () -> Bool = OneDNN.computesBF16) throws -> PrecisionChoice {
    let engine = "oneDNN \(OneDNN.version), \(OneDNN.isa)"
    switch request {
    case .fp32:
      return PrecisionChoice(precision: .fp32, why: "fp32 (--precision fp32)")
    case .bf16:
      guard !instructions.isEmpty else {
        throw PETLError("--precision bf16: this CPU has no bf16 dot-product instructions (\(BF16Hardware.required); /proc/cpuinfo flags avx512_bf16, amx_bf16); use --precision fp32 or auto")
      }
      guard oneDNNComputesBF16() else {
        throw PETLError("--precision bf16: the CPU has \(instructions.joined(separator: ", ")) but \(engine) cannot compute bf16\(OneDNN.startError.map { ": \($0)" } ?? "")")
      }
      return PrecisionChoice(precision: .bf16, why: "bf16 (--precision bf16; \(instructions.joined(separator: ", ")), \(engine))")
    case .auto:
      guard !instructions.isEmpty else {
        return PrecisionChoice(precision: .fp32, why: "fp32 (--precision auto: this CPU has no bf16 dot-product instructions, \(BF16Hardware.required))")
      }
      guard oneDNNComputesBF16() else {
        return PrecisionChoice(precision: .fp32, why: "fp32 (--precision auto: \(engine) cannot compute bf16)")
      }
      return PrecisionChoice(precision: .bf16, why: "bf16 (--precision auto: \(instructions.joined(separator: ", ")), \(engine))")
    }
  }

  /// The choice every rank of `group` makes alike: `auto` is bf16 only when every rank would choose
  /// it (one all-reduce); fp32 and bf16 are each rank's own (a rank that cannot run bf16 has failed in
  /// `local` already).
  public static func agreed(_ request: PrecisionRequest, local: PrecisionChoice, group: Collective?) -> PrecisionChoice {
    guard request == .auto, let group, group.size > 1 else { return local }
    let capable = Int(group.allreduceSum(local.precision == .bf16 ? 1 : 0))
    if capable == group.size { return PrecisionChoice(precision: .bf16, why: local.why + " on all \(group.size) ranks") }
    return PrecisionChoice(precision: .fp32, why: "fp32 (--precision auto: \(group.size - capable) of \(group.size) ranks have no bf16 (\(BF16Hardware.required)) or cannot compute it)")
  }
}

/// The precision of the engine's matrix products. `bf16` is PyTorch's CPU autocast: every GEMM
/// (linear layers, attention's batched products) reads bf16 operands and accumulates in fp32;
/// everything else (LayerNorm, softmax, GELU, dropout, the loss, reductions, master weights,
/// gradients, optimizer state) stays fp32. docs/precision.md has the table, op by op.
public enum Precision: String, Codable, Sendable, CaseIterable {
  case fp32, bf16
}

/// Whether this CPU has bf16 dot-product instructions (what makes bf16 fast, not merely possible:
/// oneDNN 2.x also emulates bf16 on plain AVX-512, several times slower).
public enum BF16Hardware {
  /// The CPU flags that provide them: `avx512_bf16` (VDPBF16PS, Cooper Lake, Zen 4 and later) and
  /// `amx_bf16` (Sapphire Rapids and later). Empty when neither is present.
  public static func instructions(flags: Set<String> = BLASCore.cpuFlags()) -> [String] {
    ["avx512_bf16", "amx_bf16"].filter(flags.contains)
  }

  /// The instructions `--precision bf16` needs, named for an error message.
  public static let required = "AVX512_BF16 or AMX-BF16"
}

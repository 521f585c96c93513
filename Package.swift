// swift-tools-version:5.10
import PackageDescription

// Release: AVX-512/AVX2 codegen for the build machine (a cluster build is made on a node like the
// ones it runs on). Bounds, overflow and precondition checks stay on (-O, not -Ounchecked): the time
// is in OpenBLAS and in pointer-based kernels, unchecked either way (docs/performance.md has the
// A/B measurement), while an unchecked build turns a wrong index in the tokenizer, data or study
// code into a silent bad read.
let hot: [SwiftSetting] = [
  .unsafeFlags(["-target-cpu", "native"], .when(configuration: .release)),
]

let package = Package(
  name: "swift-petl",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "swift-petl", targets: ["swift-petl"]),
    .library(name: "PETLStudy", targets: ["PETLStudy"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  // The layers, each depending only on the ones below it (the compiler enforces the direction):
  //   swift-petl (CLI) -> PETLStudy -> PETLDistributed -> PETLTraining -> PETLText -> PETLModel ->
  //   PETLKernels, and PETLTraining -> PETLData -> PETLKernels; PETLSupport sits at the bottom beside
  //   the kernels. Each target lists exactly the targets its files import. The engine (kernels, model)
  //   never sees MPI, a module name or a flag.
  targets: [
    // Open MPI, through pkg-config `ompi-c`; shims for the macros Swift cannot import.
    .systemLibrary(name: "CMPI", path: "CMPI", pkgConfig: "ompi-c"),
    // OpenBLAS (cblas + openblas_* control functions), through pkg-config `openblas`.
    .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas"),
    // oneDNN (Debian's libdnnl-dev; no pkg-config file, the module map links it): matmul primitives
    // for bf16 products with fp32 accumulation, and fp32 products where they beat OpenBLAS.
    .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
    // What every layer above needs and no numeric code does: the one-line error type, the JSON
    // parser for the hub's files and the user's, hashing for identities, atomic folder writes.
    .target(name: "PETLSupport"),
    // GEMM, attention, LayerNorm, GELU, dropout, the worker pool, counter-based RNG, bf16.
    .target(name: "PETLKernels", dependencies: ["CBLAS", "CDNNL"], swiftSettings: hot),
    // The encoder (BERT, RoBERTa, ELECTRA, DistilBERT) on one parameter slab: layout, forward,
    // backward, safetensors checkpoints as the hub ships them.
    .target(name: "PETLModel", dependencies: ["PETLSupport", "PETLKernels"], swiftSettings: hot),
    // WordPiece (BERT, ELECTRA, DistilBERT) and byte-level BPE (RoBERTa) tokenization, id for id as
    // transformers (checked against the model's config).
    .target(name: "PETLText", dependencies: ["PETLSupport", "PETLModel"], swiftSettings: hot),
    // Tasks, their readers and metrics.
    .target(name: "PETLData", dependencies: ["PETLSupport", "PETLKernels"], swiftSettings: hot),
    // One cell: trainable sets, the step, the optimizer, successive halving; ranks as a `Collective`;
    // the step benchmark (`swift-petl bench`).
    .target(name: "PETLTraining", dependencies: ["PETLSupport", "PETLKernels", "PETLModel", "PETLText", "PETLData"], swiftSettings: hot),
    // MPI: the communicator (a `Collective`), launch checks, stop signals.
    .target(name: "PETLDistributed", dependencies: ["CMPI", "PETLSupport", "PETLTraining"], swiftSettings: hot),
    // The grid: plan, presets, coordinator, journal, report.
    .target(name: "PETLStudy",
            dependencies: ["PETLSupport", "PETLKernels", "PETLModel", "PETLData", "PETLTraining", "PETLDistributed"],
            swiftSettings: hot),
    .executableTarget(
      name: "swift-petl",
      dependencies: ["PETLSupport", "PETLKernels", "PETLModel", "PETLText", "PETLData", "PETLTraining", "PETLDistributed", "PETLStudy",
                     .product(name: "ArgumentParser", package: "swift-argument-parser")],
      swiftSettings: hot),
    .testTarget(name: "PETLTests",
                dependencies: ["PETLSupport", "PETLKernels", "PETLModel", "PETLText", "PETLData", "PETLTraining", "PETLDistributed", "PETLStudy"]),
  ]
)

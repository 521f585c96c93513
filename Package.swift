// swift-tools-version:5.10
import PackageDescription

// Release: AVX-512/AVX2 codegen for the build machine (a cluster build is made on a node like the
// ones it runs on). Bounds, overflow and precondition checks stay on (-O, not -Ounchecked): the time
// is in OpenBLAS and in pointer-based kernels, unchecked either way (README, Performance, has the
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
    .library(name: "PETL", targets: ["PETL"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    // Open MPI, through pkg-config `ompi-c`; shims for the macros Swift cannot import.
    .systemLibrary(name: "CMPI", path: "CMPI", pkgConfig: "ompi-c"),
    // OpenBLAS (cblas + openblas_* control functions), through pkg-config `openblas`.
    .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas"),
    .target(name: "PETL", dependencies: ["CBLAS", "CMPI"], swiftSettings: hot),
    .executableTarget(
      name: "swift-petl",
      dependencies: ["PETL", .product(name: "ArgumentParser", package: "swift-argument-parser")],
      swiftSettings: hot),
    .testTarget(name: "PETLTests", dependencies: ["PETL"], exclude: []),
  ]
)

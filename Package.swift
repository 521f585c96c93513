// swift-tools-version:5.10
import PackageDescription

// Hot numeric code: AVX-512/AVX2 codegen for the build machine and no runtime checks, release only.
// Debug and test builds stay -Onone so traps still catch mistakes. A cluster build is made on (a node
// like) the nodes it runs on, so `native` is the right target there too.
let hot: [SwiftSetting] = [
  .unsafeFlags(["-Ounchecked", "-target-cpu", "native"], .when(configuration: .release)),
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

import XCTest
@testable import PETLKernels

/// The vector dropout hash against its scalar definition. (The multi-worker kernels are compared
/// with one worker through the model: Model/ShortcutTests.)
final class KernelTests: XCTestCase {
  func testVectorDropoutMatchesScalarDefinition() {
    for p: Float in [0.1, 0.5, 0.013, 0.9] {
      let n = 203
      let src = (0..<n).map { Float($0) * 0.37 - 11 }
      var dst = [Float](repeating: .nan, count: n)
      let key = CounterRNG.key(42, 7)
      src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { d in
          Dropout.apply(dst: d.baseAddress!, src: s.baseAddress!, count: n, key: key, index0: 5 << 16, p: p)
        }
      }
      let scale = 1 / (1 - p)
      for j in 0..<n {
        let want: Float = CounterRNG.uniform(key, UInt64(5 << 16 | j)) < p ? 0 : src[j] * scale
        XCTAssertEqual(dst[j].bitPattern, want.bitPattern, "p \(p) j \(j)")
      }
    }
  }
}

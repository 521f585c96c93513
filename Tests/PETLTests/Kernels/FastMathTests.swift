import XCTest
@testable import PETLKernels

/// The vector transcendental functions against double precision, and GELU's stored slope against
/// the derivative of the erf GELU.
final class FastMathTests: XCTestCase {
  private func lanes(_ from: Double, _ to: Double, count: Int) -> [F16x] {
    (0..<count).map { b in
      var v = F16x()
      for j in 0..<16 { v[j] = Float(from + (to - from) * Double(b * 16 + j) / Double(count * 16 - 1)) }
      return v
    }
  }

  func testErfExpTanhAgainstDouble() {
    var erfErr = 0.0, gaussErr = 0.0, expErr = 0.0, tanhErr = 0.0
    for v in lanes(-6, 6, count: 400) {
      let (e, g) = FastMath.erfAndGaussian(v)
      let ex = FastMath.exp(v), th = FastMath.tanh(v)
      for j in 0..<16 {
        let x = Double(v[j])
        erfErr = max(erfErr, abs(Double(e[j]) - Foundation.erf(x)))
        gaussErr = max(gaussErr, abs(Double(g[j]) - Foundation.exp(-x * x)))
        expErr = max(expErr, abs(Double(ex[j]) - Foundation.exp(x)) / Foundation.exp(x))
        tanhErr = max(tanhErr, abs(Double(th[j]) - Foundation.tanh(x)))
      }
    }
    XCTAssertLessThan(erfErr, 5e-7)    // A&S 7.1.26: 1.5e-7, plus float rounding
    XCTAssertLessThan(gaussErr, 3e-7)
    XCTAssertLessThan(expErr, 3e-7)    // about 2 ulp
    XCTAssertLessThan(tanhErr, 3e-7)
  }

  func testGELUSlopeIsTheDerivative() {
    let xs = lanes(-8, 8, count: 64).flatMap { v in (0..<16).map { v[$0] } }
    var u = xs, g = [Float](repeating: 0, count: xs.count), plain = g
    u.withUnsafeMutableBufferPointer { up in
      g.withUnsafeMutableBufferPointer { gp in
        Ops.geluForward(gp.baseAddress!, up.baseAddress!, count: xs.count, slope: up.baseAddress!)  // slope in place
      }
    }
    var u2 = xs
    u2.withUnsafeMutableBufferPointer { up in
      plain.withUnsafeMutableBufferPointer { Ops.geluForward($0.baseAddress!, up.baseAddress!, count: xs.count) }
    }
    XCTAssertEqual(g, plain, "the slope changes nothing in the forward")
    for (i, x32) in xs.enumerated() {
      let x = Double(x32)
      let cdf = 0.5 * (1 + Foundation.erf(x / 2.0.squareRoot()))
      XCTAssertEqual(Double(g[i]), x * cdf, accuracy: 1e-6 * max(1, abs(x)), "gelu(\(x))")
      let slope = cdf + x * Foundation.exp(-x * x / 2) / (2 * Double.pi).squareRoot()
      XCTAssertEqual(Double(u[i]), slope, accuracy: 2e-6, "gelu'(\(x))")
    }
  }
}

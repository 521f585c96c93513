import XCTest
@testable import PETL

final class SmokeTests: XCTestCase {
  func testErrorDescribesItself() {
    XCTAssertEqual(PETLError("bad flag --x").description, "bad flag --x")
  }
}

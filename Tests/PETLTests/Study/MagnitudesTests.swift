import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import PETLModel
@testable import PETLStudy

final class MagnitudesTests: XCTestCase {
  /// Statistics of real tensors equal numpy's (reference/magnitudes_fixture.py) to 1e-6 relative.
  func testMagnitudesMatchNumpyOnTheRealModel() throws {
    let (m, _) = try EncoderModel.load(directory: try TestSupport.requireModel(), numLabels: 2)
    let mags = Magnitudes(base: m)
    let url = TestSupport.fixtures.appendingPathComponent("magnitudes/expected.json")
    let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [String: Double]]
    XCTAssertEqual(expected.count, 6)
    for (name, e) in expected {
      let slot = m.layout.slot(named: name)!
      let part = slot.module == .embeddings && slot.role == .table ? String(name.split(separator: ".")[1]) : slot.role.rawValue
      let row = try XCTUnwrap(mags.rows.first { $0.module == slot.module.rawValue && $0.layer == slot.layer && $0.part == part }, name)
      XCTAssertEqual(Double(row.count), e["count"]!, name)
      for (got, key) in [(row.meanAbs, "mean_abs"), (row.rms, "rms"), (row.maxAbs, "max_abs")] {
        XCTAssertEqual(got, e[key]!, accuracy: 1e-6 * e[key]!, "\(name) \(key)")
      }
    }
    let svg = mags.svg(layers: m.dims.layers)
    let parser = XMLParser(data: Data(svg.utf8))
    XCTAssertTrue(parser.parse(), "magnitudes.svg is well-formed XML")
    XCTAssertEqual(svg.components(separatedBy: "<rect").count - 1, 8 * 6 + SVGHeatmap.legendSteps)
  }

  /// With an adapter, `moved` is ‖Δ‖/‖w‖ for the tensors it holds and nil elsewhere.
  func testMovedIsTheRelativeChange() {
    let base = TestSupport.tinyModel()
    let tuned = TestSupport.tinyModel()
    let slot = tuned.layout.slot(named: "encoder.layer.1.output.LayerNorm.weight")!
    var norm2 = 0.0
    for i in 0..<slot.count { norm2 += Double(base.pointer(slot)[i] * base.pointer(slot)[i]); tuned.pointer(slot)[i] += 0.01 }
    let mags = Magnitudes(base: base, tuned: [("a", tuned, [slot.name])])
    let row = mags.rows.first { $0.module == "ln_out" && $0.layer == 1 && $0.part == "gamma" }!
    XCTAssertEqual(row.moved[0]!, (Double(slot.count) * 0.0001 / norm2).squareRoot(), accuracy: 1e-6)
    XCTAssertNil(mags.rows.first { $0.module == "query" && $0.layer == 0 && $0.part == "weight" }!.moved[0])
  }
}

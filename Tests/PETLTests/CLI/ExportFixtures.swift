import Foundation
import XCTest
@testable import PETLModel

/// What reference/export_fixtures.py found in transformers 5.24 and peft 0.21.2 for each case
/// (`Tests/Fixtures/export/<case>/expected.json`), and the recipe adapter it exported, rebuilt here
/// bit for bit: no weights are committed.
struct ExportFixture {
  static let dir = TestSupport.fixtures.appendingPathComponent("export")
  static let cases = ["bert", "roberta", "electra", "distilbert", "bert-stsb"]

  let name: String
  let json: [String: Any]

  init(_ name: String) throws {
    self.name = name
    let url = Self.dir.appendingPathComponent(name).appendingPathComponent("expected.json")
    json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
  }

  var family: EncoderFamily { EncoderFamily(rawValue: json["family"] as! String)! }
  var task: String { json["task"] as! String }
  func section(_ key: String) -> [String: Any] { json[key] as! [String: Any] }
  var logits: [[Double]] { json["logits"] as! [[Double]] }

  /// The adapter's tensors, our names, in the fixture's order.
  var adapterTensors: [(name: String, shape: [Int])] {
    (section("adapter")["tensors"] as! [[Any]]).map { ($0[0] as! String, $0[1] as! [Int]) }
  }

  /// `recipe("adapter." + name)`, the output projection's weight times the fixture's scale, in
  /// float32 as the script computes it.
  func adapterValues(_ name: String, count: Int) -> [Float] {
    let a = section("adapter")
    let scaled = (a["scaled"] as! [String]).contains(name)
    let scale = Float(a["output_scale"] as! Int)
    return FamilyFixtures.recipe("adapter." + name, count: count).map { scaled ? $0 * scale : $0 }
  }

  /// Writes the case's adapter (values and metadata) to `url`; `drop` leaves tensors out and
  /// `metadata: false` leaves the metadata out (for the refusals).
  func writeAdapter(to url: URL, drop: (String) -> Bool = { _ in false }, metadata: Bool = true) throws {
    let tensors = adapterTensors.filter { !drop($0.name) }
    let values = tensors.map { adapterValues($0.name, count: $0.shape.reduce(1, *)) }
    let meta = metadata ? section("adapter")["metadata"] as! [String: String] : ["format": "pt"]
    try FamilyFixtures.withBuffers(values) { buffers in
      try SafeTensors.write(to: url, tensors: zip(tensors, buffers).map { ($0.0.name, $0.0.shape, $0.1) }, metadata: meta)
    }
  }
}

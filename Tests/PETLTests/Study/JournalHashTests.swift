import Foundation
import XCTest
@testable import PETLStudy
import PETLSupport

/// A journal record whose `spec_hash` is not the hash of its spec (a hand edit, another tool) could
/// stand for another cell: `report` sets it aside with the reason, and a resumed grid counts it for
/// no cell.
final class JournalHashTests: XCTestCase {
  func testRecordWhoseHashIsNotItsSpecsIsSetAside() throws {
    let source = TestSupport.fixtures.appendingPathComponent("report/journal-a.jsonl")
    let lines = try String(contentsOf: source, encoding: .utf8).split(separator: "\n").map(String.init)
    let clean = try StudyReport(journals: [source])
    XCTAssertTrue(clean.setAside.isEmpty, "the fixture's hashes are its specs'")
    let folder = try temporaryFolder("journal-hash")
    let url = folder.appendingPathComponent("journal.jsonl")
    // Line 1: its hash replaced; line 2: its spec edited (the learning rate) under the old hash.
    var edited = lines
    let hash = try XCTUnwrap(lines[0].range(of: #""spec_hash": "[0-9a-f]{16}""#, options: .regularExpression))
    edited[0] = lines[0].replacingCharacters(in: hash, with: #""spec_hash": "0123456789abcdef""#)
    edited[1] = lines[1].replacingOccurrences(of: #""learningRate": 0.0001"#, with: #""learningRate": 0.0002"#)
    XCTAssertNotEqual(edited[1], lines[1])
    try edited.joined(separator: "\n").appending("\n").write(to: url, atomically: true, encoding: .utf8)
    let report = try StudyReport(journals: [url])
    XCTAssertEqual(report.setAside.count, 2)
    XCTAssertEqual(report.results.records.count, clean.results.records.count - 2)
    let md = report.markdown()
    XCTAssertTrue(md.contains(#"spec_hash "0123456789abcdef" is not the hash of its spec"#), md)
    let journal = try Journal(url: url)
    let done = journal.done(inputs: [:])
    XCTAssertFalse(done.ok.contains("0123456789abcdef"))
    XCTAssertEqual(done.why.filter { $0.contains("is not the hash of its spec (ignored)") }.count, 2, "\(done.why)")
  }
}

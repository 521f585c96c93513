import Foundation
import XCTest
@testable import PETLData
import PETLSupport

/// The GLUE readers on the real dev/train files (counts and label balance as PROVENANCE.md states),
/// on hand-written samples of the tasks whose files are too large to keep here, on malformed files,
/// and the rt-vader split on the sha256-checked file.
final class DataTests: XCTestCase {
  /// The package root: this file is `<root>/Tests/PETLTests/DataTests.swift`.
  static let root = TestSupport.root
  static let fixtures = root.appendingPathComponent("Tests/Fixtures/data")
  static let samples = fixtures.appendingPathComponent("glue_samples")

  /// The real GLUE files, beside the checkout in `shared/` (on this machine and in CI). Missing data
  /// throws, which fails the test: a skipped reader test would prove nothing.
  func glueDir() throws -> URL {
    let dir = Self.root.appendingPathComponent("../shared/data/glue").standardized
    guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("RTE/train.tsv").path) else {
      throw PETLError("GLUE data missing at \(dir.path): run launch/setup")
    }
    return dir
  }

  func load(_ name: String, _ dir: URL, _ split: String) throws -> [Example] {
    try loadExamples(task: try TaskDescriptor.named(name), dataDir: dir, split: split)
  }

  /// How many examples carry each class index.
  func classCounts(_ examples: [Example], classes: Int) -> [Int] {
    var counts = [Int](repeating: 0, count: classes)
    for e in examples { counts[Int(e.label)] += 1 }
    return counts
  }

  // MARK: descriptors

  func testTaskTable() throws {
    XCTAssertEqual(TaskDescriptor.all.map(\.name),
                   ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "rt-vader"])
    let mnli = try TaskDescriptor.named("mnli")
    XCTAssertEqual(mnli.labelNames, ["contradiction", "entailment", "neutral"])
    XCTAssertEqual(mnli.devSplits, ["dev_matched", "dev_mismatched"])
    XCTAssertEqual(mnli.metricKey("accuracy", split: "dev_mismatched"), "accuracy_mm")
    XCTAssertEqual(try TaskDescriptor.named("rte").labelNames, ["entailment", "not_entailment"])
    let stsb = try TaskDescriptor.named("stsb")
    XCTAssertTrue(stsb.isRegression)
    XCTAssertEqual(stsb.numLabels, 1)
    XCTAssertEqual(try TaskDescriptor.named("rt-vader").labelNames, ["negative", "positive"])
    let primary = Dictionary(uniqueKeysWithValues: TaskDescriptor.all.map { ($0.name, $0.primaryMetric) })
    XCTAssertEqual(primary, ["cola": "mcc", "sst2": "accuracy", "mrpc": "f1", "stsb": "pearson", "qqp": "f1",
                             "mnli": "accuracy", "qnli": "accuracy", "rte": "accuracy", "wnli": "accuracy",
                             "rt-vader": "accuracy"])
    for task in TaskDescriptor.all { XCTAssertTrue(task.metricNames.contains(task.primaryMetric), task.name) }
    assertError("unknown task 'sst-2' (known: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, rt-vader)") {
      _ = try TaskDescriptor.named("sst-2")
    }
  }

  func testUnknownSplitIsAnError() throws {
    assertError("task rte: unknown split 'dev_matched' (known: train, dev)") {
      _ = try self.load("rte", Self.samples, "dev_matched")
    }
  }

  func testMissingFileNamesTheTaskFolder() {
    let dir = Self.fixtures.appendingPathComponent("nowhere")
    assertError("\(dir.path)/SST-2/train.tsv: file not found (task sst2 reads the glue_data folder SST-2/ "
                + "under the data directory \(dir.path))") {
      _ = try self.load("sst2", dir, "train")
    }
  }

  // MARK: real GLUE files

  func testCoLA() throws {
    let dir = try glueDir()
    let train = try load("cola", dir, "train")
    XCTAssertEqual(train.count, 8551)
    XCTAssertEqual(classCounts(train, classes: 2), [2528, 6023])
    XCTAssertEqual(train[0], Example(textA: "Our friends won't buy this analysis, let alone the next one we propose.",
                                     label: 1))
    let dev = try load("cola", dir, "dev")  // its last line has no final newline
    XCTAssertEqual(dev.count, 1043)
    XCTAssertEqual(classCounts(dev, classes: 2), [322, 721])
  }

  func testMRPCReadsPastTheByteOrderMark() throws {
    let dir = try glueDir()
    let train = try load("mrpc", dir, "train")
    XCTAssertEqual(train.count, 3668)
    XCTAssertEqual(classCounts(train, classes: 2), [1194, 2474])
    XCTAssertEqual(train[0].textA,
                   "Amrozi accused his brother , whom he called \" the witness \" , of deliberately distorting his evidence .")
    XCTAssertEqual(train[0].textB,
                   "Referring to him as only \" the witness \" , Amrozi accused his brother of deliberately distorting his evidence .")
    let dev = try load("mrpc", dir, "dev")
    XCTAssertEqual(dev.count, 408)
    XCTAssertEqual(classCounts(dev, classes: 2), [129, 279])
  }

  func testSTSB() throws {
    let dir = try glueDir()
    let train = try load("stsb", dir, "train")
    XCTAssertEqual(train.count, 5749)
    XCTAssertEqual(train[0], Example(textA: "A plane is taking off.", textB: "An air plane is taking off.", label: 5))
    XCTAssertEqual(train[1].label, 3.8)
    let dev = try load("stsb", dir, "dev")
    XCTAssertEqual(dev.count, 1500)
    for e in train + dev { XCTAssertTrue((0...5).contains(e.label)) }
    XCTAssertEqual(train.map(\.label).min(), 0)
    XCTAssertEqual(train.map(\.label).max(), 5)
  }

  func testRTE() throws {
    let dir = try glueDir()
    let train = try load("rte", dir, "train")
    XCTAssertEqual(train.count, 2490)
    XCTAssertEqual(classCounts(train, classes: 2), [1249, 1241])  // entailment, not_entailment
    XCTAssertEqual(train[0], Example(textA: "No Weapons of Mass Destruction Found in Iraq Yet.",
                                     textB: "Weapons of Mass Destruction Found in Iraq.", label: 1))
    let dev = try load("rte", dir, "dev")
    XCTAssertEqual(dev.count, 277)
    XCTAssertEqual(classCounts(dev, classes: 2), [146, 131])
  }

  func testWNLI() throws {
    let dir = try glueDir()
    let train = try load("wnli", dir, "train")
    XCTAssertEqual(train.count, 635)
    XCTAssertEqual(classCounts(train, classes: 2), [323, 312])
    XCTAssertEqual(train[0], Example(textA: "I stuck a pin through a carrot. When I pulled the pin out, it had a hole.",
                                     textB: "The carrot had a hole.", label: 1))
    let dev = try load("wnli", dir, "dev")
    XCTAssertEqual(dev.count, 71)
    XCTAssertEqual(classCounts(dev, classes: 2), [40, 31])
  }

  // MARK: written samples of the large tasks

  func testSST2KeepsTheTextAsIs() throws {
    let train = try load("sst2", Self.samples, "train")
    XCTAssertEqual(train.count, 6)
    XCTAssertEqual(train[0], Example(textA: "hide new secretions from the parental units ", label: 0))
    XCTAssertEqual(train.map(\.label), [0, 0, 1, 0, 0, 1])
    XCTAssertEqual(train[4].textA, "on the worst revenge-of-the-nerds clichés the filmmakers could dredge up ")
    XCTAssertEqual(try load("sst2", Self.samples, "dev").map(\.label), [1, 0, 1])
  }

  func testQQP() throws {
    let train = try load("qqp", Self.samples, "train")
    XCTAssertEqual(train.map(\.label), [0, 1, 0, 1])
    XCTAssertEqual(train[1], Example(textA: "How do I control my horny emotions?",
                                     textB: "How do you control your horniness?", label: 1))
    XCTAssertEqual(try load("qqp", Self.samples, "dev").map(\.label), [0, 0, 1])
  }

  func testMNLISplitsAndLabelOrder() throws {
    let train = try load("mnli", Self.samples, "train")
    XCTAssertEqual(train.map(\.label), [2, 1, 0])  // neutral, entailment, contradiction
    XCTAssertEqual(train[0].textA, "Conceptually cream skimming has two basic dimensions - product and geography.")
    XCTAssertEqual(train[0].textB, "Product and geography are what make cream skimming work. ")
    let matched = try load("mnli", Self.samples, "dev_matched")
    XCTAssertEqual(matched.map(\.label), [2, 0, 1])  // gold_label, not label1
    XCTAssertEqual(try load("mnli", Self.samples, "dev"), matched)
    let mismatched = try load("mnli", Self.samples, "dev_mismatched")
    XCTAssertEqual(mismatched.map(\.label), [0, 1, 2])
    XCTAssertEqual(mismatched[1].textB, "We serve a meal of Florentine terrine.")
  }

  func testQNLI() throws {
    let train = try load("qnli", Self.samples, "train")
    XCTAssertEqual(train.map(\.label), [1, 1, 0])
    XCTAssertEqual(train[0].textA, "When did the third Digimon series begin?")
    XCTAssertEqual(try load("qnli", Self.samples, "dev").map(\.label), [0, 1])
  }

  func testCRLFWithoutFinalNewline() throws {
    let rows = try load("rte", Self.fixtures.appendingPathComponent("line_endings"), "train")
    XCTAssertEqual(rows.map(\.label), [1, 0])
    XCTAssertEqual(rows[1].textB, "Pope Benedict XVI is the new leader of the Roman Catholic Church.")
  }

  // MARK: malformed files

  func malformed(_ name: String) -> URL { Self.fixtures.appendingPathComponent("malformed/\(name)") }

  func testWrongColumnCount() {
    let dir = malformed("wrong_columns")
    assertError("\(dir.path)/RTE/train.tsv:4: expected 4 tab-separated columns, found 3") {
      _ = try self.load("rte", dir, "train")
    }
    let cola = malformed("cola_columns")
    assertError("\(cola.path)/CoLA/train.tsv:2: expected 4 tab-separated columns, found 3") {
      _ = try self.load("cola", cola, "train")
    }
  }

  func testUnknownLabel() {
    let dir = malformed("bad_label")
    assertError("\(dir.path)/RTE/train.tsv:3: unknown label 'neutral' (expected one of: entailment, not_entailment)") {
      _ = try self.load("rte", dir, "train")
    }
  }

  func testUnparsableScore() {
    let dir = malformed("bad_float")
    assertError("\(dir.path)/STS-B/train.tsv:4: score '3.8o0' is not a finite number") {
      _ = try self.load("stsb", dir, "train")
    }
  }

  func testMissingHeaderColumn() {
    let dir = malformed("no_column")
    assertError("\(dir.path)/RTE/train.tsv:1: header has no column 'sentence1' (found: index, premise, hypothesis, label)") {
      _ = try self.load("rte", dir, "train")
    }
  }

  func testInvalidUTF8AndEmptyLines() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petl-data-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("WNLI"), withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("WNLI/train.tsv")
    let header = Array("index\tsentence1\tsentence2\tlabel\n0\tA b.\tA.\t1\n".utf8)
    try Data(header + Array("1\tCaf".utf8) + [0xC3, 0x28] + Array("\tB.\t0\n".utf8)).write(to: path)
    assertError("\(path.path):3: invalid UTF-8") { _ = try self.load("wnli", dir, "train") }
    try Data(header + Array("\n1\tC.\tD.\t0\n".utf8)).write(to: path)
    assertError("\(path.path):3: expected 4 tab-separated columns, found 1") { _ = try self.load("wnli", dir, "train") }
    try Data(Array("index\tsentence1\tsentence2\tlabel\n".utf8)).write(to: path)
    assertError("\(path.path): no data rows") { _ = try self.load("wnli", dir, "train") }
  }

  // MARK: rt-vader

  func testRTVaderMalformedRows() {
    let dir = malformed("rt_vader")
    assertError("\(dir.path)/rt-vader/movieReviewSnippets_GroundTruth.txt:2: score 'positive' is not a finite number") {
      _ = try self.load("rt-vader", dir, "train")
    }
  }

  /// Counts measured on the sha256-checked file and documented in `RTVader` and the fixtures README.
  func testRTVaderSplitOnTheRealFile() throws {
    let dir = Self.root.appendingPathComponent("data")
    guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("rt-vader/\(RTVader.fileName)").path) else {
      throw PETLError("rt-vader missing at \(dir.path)/rt-vader: run launch/setup")
    }
    let train = try load("rt-vader", dir, "train")
    let dev = try load("rt-vader", dir, "dev")
    XCTAssertEqual(train.count, 9534)
    XCTAssertEqual(dev.count, 1034)
    XCTAssertEqual(train.count + dev.count, 10_605 - 37)
    XCTAssertEqual(classCounts(train, classes: 2), [4804, 4730])
    XCTAssertEqual(classCounts(dev, classes: 2), [522, 512])
    XCTAssertTrue(Set(train.map(\.textA)).isDisjoint(with: dev.map(\.textA)))
    XCTAssertEqual(train[0].textB, nil)
    XCTAssertTrue(train.contains { $0.textA.hasPrefix("The Rock is destined to be the 21st Century's new ''Conan''") })
    // Hash order, not file order: every prefix is balanced (the file lists positives first).
    for n in [100, 1000] {
      let pos = train.prefix(n).filter { $0.label == 1 }.count
      XCTAssertTrue(abs(pos - n / 2) < n / 8, "first \(n) train examples have \(pos) positive")
    }
    XCTAssertFalse(train.contains { $0.textA.hasSuffix("\r") })
  }

  func testRTVaderSplitRule() {
    // Dev ids among 1...200, computed independently in Python (FNV-1a 64 of "rt-vader:<id>", mod 10).
    XCTAssertEqual((1...200).filter { RTVader.isDev(id: String($0)) },
                   [8, 11, 20, 35, 44, 51, 64, 75, 97, 99, 116, 125, 130, 141, 152, 158, 167, 170, 185, 192])
  }
}

import Foundation
import XCTest
@testable import PETLData

/// A task of the user's own, read from a folder: the three formats, the column and label rules,
/// `task.json`, every malformed row's one-line `path:line: what`, the catalog that finds user tasks
/// by name. (Its fingerprint and its records in a report: Study/UserTaskStudyTests.)
final class UserTaskTests: XCTestCase {
  func task(_ dir: URL) throws -> TaskDescriptor { try TaskDescriptor.userTask(folder: dir) }

  func load(_ dir: URL, _ split: String) throws -> [Example] {
    try loadExamples(task: try task(dir), dataDir: dir, split: split)
  }

  static let pairs = """
    {"text": "A man sleeps.", "text_pair": "Someone rests.", "label": "entailment", "id": 7}
    {"text": "", "text_pair": "Nobody.", "label": "not_entailment", "id": "a-1"}
    {"text": "Caf\\u00e9 \\"quoted\\"", "text_pair": "x", "label": "entailment", "id": 9, "extra": [1, {"k": null}]}

    """

  // MARK: formats

  func testJSONLinesPairTaskWithTheDefaultColumns() throws {
    let dir = try folder(["train.jsonl": Self.pairs, "dev.jsonl": Self.pairs])
    let t = try task(dir)
    XCTAssertEqual(t.name, "my-task")
    XCTAssertTrue(t.isPair)
    XCTAssertEqual(t.labelNames, ["entailment", "not_entailment"])
    XCTAssertEqual(t.numLabels, 2)
    XCTAssertFalse(t.isRegression)
    XCTAssertEqual(t.primaryMetric, "accuracy")
    XCTAssertEqual(t.metricNames, ["accuracy"])
    XCTAssertEqual(t.splits, ["train", "dev"])
    let train = try load(dir, "train")
    XCTAssertEqual(train, [
      Example(textA: "A man sleeps.", textB: "Someone rests.", label: 0, id: "7"),
      Example(textA: "", textB: "Nobody.", label: 1, id: "a-1"),  // empty text is accepted, as HF does
      Example(textA: "Café \"quoted\"", textB: "x", label: 0, id: "9"),
    ])
    XCTAssertEqual(t.about, "task my-task: \(dir.path)/{train.jsonl, dev.jsonl}; text=text, text_pair=text_pair, "
                     + "label=label, id=id; labels entailment, not_entailment (from the training labels, sorted); metric accuracy")
    XCTAssertEqual(t.inputFiles(dataDirectory: URL(fileURLWithPath: "/unused")).map(\.lastPathComponent), ["train.jsonl", "dev.jsonl"])
  }

  func testNumberLabelsAndStringLabelsAreOneClass() throws {
    let dir = try folder([
      "train.jsonl": """
        {"sentence": "a", "label": 1}
        {"sentence": "b", "label": "0"}
        {"sentence": "c", "label": 1.0}
        {"sentence": "d", "label": 0}

        """,
      "dev.jsonl": "{\"sentence\": \"e\", \"label\": \"1\"}\n{\"sentence\": \"f\", \"label\": 0e3}\n",
    ])
    let t = try task(dir)
    XCTAssertEqual(t.labelNames, ["0", "1"])
    XCTAssertFalse(t.isPair)
    XCTAssertEqual(try load(dir, "train").map(\.label), [1, 0, 1, 0])
    XCTAssertEqual(try load(dir, "train").map(\.textA), ["a", "b", "c", "d"], "'sentence' when there is no 'text'")
    XCTAssertEqual(try load(dir, "dev").map(\.label), [1, 0])
    XCTAssertEqual(try load(dir, "dev").map(\.id), [nil, nil])
  }

  func testInferredLabelsSortNumericallyWhenAllAreIntegersElseByBytes() throws {
    let integers = try folder(["train.tsv": "text\tlabel\na\t10\nb\t9\nc\t-1\nd\t9\n", "dev.tsv": "text\tlabel\na\t9\n"])
    XCTAssertEqual(try task(integers).labelNames, ["-1", "9", "10"])
    XCTAssertEqual(try load(integers, "train").map(\.label), [2, 1, 0, 1])
    let strings = try folder(["train.tsv": "text\tlabel\na\tb\nb\tB\nc\ta\nd\t10\ne\té\n", "dev.tsv": "text\tlabel\na\tb\n"])
    XCTAssertEqual(try task(strings).labelNames, ["10", "B", "a", "b", "é"])
  }

  func testTSVWithIdxAndTheGLUERowChecks() throws {
    let dir = try folder(["train.tsv": "idx\tsentence\tlabel\r\nx1\tGood \"film\".\tpos\r\nx2\tBad.\tneg",
                          "dev.tsv": "idx\tsentence\tlabel\n3\tFine.\tpos\n4\tMeh.\n"])
    let train = try load(dir, "train")
    XCTAssertEqual(train, [Example(textA: "Good \"film\".", label: 1, id: "x1"), Example(textA: "Bad.", label: 0, id: "x2")])
    let dev = dir.appendingPathComponent("dev.tsv").path
    assertError("\(dev):3: expected 3 tab-separated columns, found 2") { _ = try self.load(dir, "dev") }
    try Data("sentence\tidx\nFine.\t3\n".utf8).write(to: URL(fileURLWithPath: dev))
    assertError("\(dev):1: header has no column 'label' (found: sentence, idx)") { _ = try self.load(dir, "dev") }
  }

  func testCSVQuotingWithATaskFile() throws {
    let csv = "\u{FEFF}pair_id,premise,hypothesis,gold\r\n"
      + "1,\"a, b\",\"say \"\"hi\"\"\",yes\r\n"
      + "2,\"two\nlines\",\"\",no\r\n"
      + "3,plain,\"end\"\r\n"
    let dir = try folder([
      "train.csv": csv.replacingOccurrences(of: "\"end\"\r\n", with: "\"end\",yes\r\n"),
      "dev.csv": csv.replacingOccurrences(of: "\"end\"\r\n", with: "\"end\",maybe\r\n"),
      "task.json": """
        {"name": "nli", "columns": {"text": "premise", "text_pair": "hypothesis", "label": "gold", "id": "pair_id"},
         "labels": ["yes", "no"], "metric": "f1"}
        """,
    ])
    let t = try task(dir)
    XCTAssertEqual(t.name, "nli")
    XCTAssertEqual(t.labelNames, ["yes", "no"], "task.json's order, not sorted")
    XCTAssertEqual(t.primaryMetric, "f1")
    XCTAssertEqual(t.metricNames, ["f1", "accuracy"])
    XCTAssertEqual(t.inputFiles(dataDirectory: dir).map(\.lastPathComponent), ["train.csv", "dev.csv", "task.json"])
    XCTAssertEqual(try load(dir, "train"), [
      Example(textA: "a, b", textB: "say \"hi\"", label: 0, id: "1"),
      Example(textA: "two\nlines", textB: "", label: 1, id: "2"),
      Example(textA: "plain", textB: "end", label: 0, id: "3"),
    ])
    // The record after a two-line one starts on physical line 5.
    assertError("\(dir.path)/dev.csv:5: unknown label 'maybe' (expected one of: yes, no)") { _ = try self.load(dir, "dev") }
  }

  func testTrainAndDevMayHaveDifferentFormats() throws {
    let dir = try folder(["train.tsv": "sentence\tlabel\nGood.\tpos\nBad.\tneg\n",
                          "dev.jsonl": "{\"sentence\": \"Fine.\", \"label\": \"pos\"}\n"])
    XCTAssertEqual(try load(dir, "dev"), [Example(textA: "Fine.", label: 1)])
    XCTAssertEqual(try task(dir).inputFiles(dataDirectory: dir).map(\.lastPathComponent), ["train.tsv", "dev.jsonl"])
  }

  func testCSVErrorsNamePhysicalLines() throws {
    let dir = try folder(["train.csv": "text,label\na,0\nb,1\n", "dev.csv": ""])
    let dev = dir.appendingPathComponent("dev.csv")
    func check(_ body: String, _ expected: String, line: UInt = #line) throws {
      try Data(body.utf8).write(to: dev)
      assertError("\(dev.path):\(expected)", line: line) { _ = try self.load(dir, "dev") }
    }
    try check("text,label\n\"a\nb\",0\n\"never closed,1\nx,0\n", "4: a quoted field is never closed")
    try check("text,label\n5\" screen,0\n", "2: a quote inside an unquoted field (RFC 4180: put the field in quotes and write the quote twice)")
    try check("text,label\n\"a\"b,0\n", "2: text after a field's closing quote (a quote inside a quoted field is written twice)")
    try check("text,label\n\"a\nb\",0\nc,1,extra\n", "4: expected 2 comma-separated columns, found 3")
    try check("text,label\na,0\n\nb,1\n", "3: expected 2 comma-separated columns, found 1")
    try check("text,label\n", " no data rows")
  }

  // MARK: bad rows

  func testJSONLinesErrorsAreOneLineWithTheirLine() throws {
    let dir = try folder(["train.jsonl": "{\"text\": \"a\", \"label\": 0}\n{\"text\": \"b\", \"label\": 1}\n", "dev.jsonl": ""])
    let dev = dir.appendingPathComponent("dev.jsonl")
    let good = "{\"text\": \"a\", \"label\": 0}\n"
    func check(_ body: [UInt8], _ expected: String, line: UInt = #line) throws {
      try Data(body).write(to: dev)
      assertError("\(dev.path):\(expected)", line: line) { _ = try self.load(dir, "dev") }
    }
    func check(_ body: String, _ expected: String, line: UInt = #line) throws { try check(Array(body.utf8), expected, line: line) }
    try check(good + "{\"text\": \"b\", \"label\": }\n", "2: invalid JSON (unexpected character '}')")
    try check(good + "{\"text\": \"b\", \"label\": 1} x\n", "2: invalid JSON (unexpected text after the JSON value)")
    try check(good + "[\"b\", 1]\n", "2: expected a JSON object, found an array")
    try check(good + "{\"text\": \"b\"}\n", "2: no field 'label'")
    try check(good + "{\"label\": 1}\n", "2: no field 'text'")
    try check(good + "{\"text\": 5, \"label\": 1}\n", "2: field 'text' is a number, not a string")
    try check(good + "{\"text\": null, \"label\": 1}\n", "2: field 'text' is null, not a string")
    try check(good + "{\"text\": \"b\", \"label\": true}\n", "2: field 'label' is a boolean, not a string or a number")
    try check(good + "\n" + good, "2: empty line (JSON Lines holds one object per line)")
    try check(good + "{\"text\": \"b\", \"label\": 2}\n", "2: unknown label 2 (expected one of: 0, 1)")
    try check(Array(good.utf8) + Array("{\"text\": \"Caf".utf8) + [0xC3, 0x28] + Array("\", \"label\": 1}\n".utf8), "2: invalid UTF-8")
    try check("", " no data rows")
  }

  func testIdsMustFitATSVCell() throws {
    let dir = try folder(["train.jsonl": "{\"text\": \"a\", \"label\": 0, \"id\": \"x\\ty\"}\n{\"text\": \"b\", \"label\": 1, \"id\": 2}\n",
                          "dev.jsonl": "{\"text\": \"a\", \"label\": 0, \"id\": 1}\n"])
    assertError("\(dir.path)/train.jsonl:1: id holds a tab or a line break (predict --output writes ids into a TSV)") {
      _ = try self.task(dir)
    }
  }

  func testRegressionReadsScoresAsTheGLUEReaderDoes() throws {
    let dir = try folder([
      "train.jsonl": "{\"text\": \"a\", \"label\": 3.8}\n{\"text\": \"b\", \"label\": \"0.2\"}\n{\"text\": \"c\", \"label\": 5}\n",
      "dev.jsonl": "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": \"nan\"}\n",
      "task.json": "{\"metric\": \"spearman\"}",
    ])
    let t = try task(dir)
    XCTAssertTrue(t.isRegression)
    XCTAssertEqual(t.numLabels, 1)
    XCTAssertEqual(t.labelNames, [])
    XCTAssertEqual(t.primaryMetric, "spearman")
    XCTAssertEqual(t.metricNames, ["pearson", "spearman"])
    XCTAssertEqual(try load(dir, "train").map(\.label), [Float("3.8")!, Float("0.2")!, 5])
    let dev = dir.appendingPathComponent("dev.jsonl")
    assertError("\(dev.path):2: score 'nan' is not a finite number") { _ = try self.load(dir, "dev") }
    try Data("{\"text\": \"a\", \"label\": 1e999}\n".utf8).write(to: dev)
    assertError("\(dev.path):1: score 1e999 is not a finite number") { _ = try self.load(dir, "dev") }
  }

  func testALabelOutsideTheSetIsAnErrorNeverANewClass() throws {
    let inferred = try folder(["train.jsonl": "{\"text\": \"a\", \"label\": \"no\"}\n{\"text\": \"b\", \"label\": \"yes\"}\n",
                               "dev.jsonl": "{\"text\": \"a\", \"label\": \"no\"}\n{\"text\": \"b\", \"label\": \"yes\"}\n{\"text\": \"c\", \"label\": \"maybe\"}\n"])
    assertError("\(inferred.path)/dev.jsonl:3: unknown label 'maybe' (expected one of: no, yes)") { _ = try self.load(inferred, "dev") }
    let given = try folder(["train.tsv": "text\tlabel\na\tno\nb\tmaybe\n", "dev.tsv": "text\tlabel\na\tno\n",
                            "task.json": "{\"labels\": [\"yes\", \"no\"]}"])
    assertError("\(given.path)/train.tsv:3: unknown label 'maybe' (expected one of: yes, no)") { _ = try self.load(given, "train") }
    let empty = try folder(["train.tsv": "text\tlabel\na\tno\nb\t\n", "dev.tsv": "text\tlabel\na\tno\n"])
    assertError("\(empty.path)/train.tsv:3: empty label") { _ = try self.task(empty) }
    let one = try folder(["train.tsv": "text\tlabel\na\tno\nb\tno\n", "dev.tsv": "text\tlabel\na\tno\n"])
    assertError("\(one.path)/train.tsv: every row has the label 'no'; a classification task needs two labels or more "
                  + "(task.json \"labels\" lists them)") { _ = try self.task(one) }
  }

  // MARK: folder and task.json

  func testFolderErrors() throws {
    let missing = try folder(["train.jsonl": Self.pairs])
    assertError("\(missing.path): no dev file (dev.tsv, dev.csv, dev.jsonl)") { _ = try self.task(missing) }
    let twice = try folder(["train.jsonl": Self.pairs, "train.csv": "text,label\na,0\n", "dev.jsonl": Self.pairs])
    assertError("\(twice.path): train.csv and train.jsonl are both the train split; keep one") { _ = try self.task(twice) }
    let noText = try folder(["train.jsonl": "{\"body\": \"a\", \"label\": 0}\n", "dev.jsonl": Self.pairs])
    assertError("\(noText.path)/train.jsonl:1: no field 'text' or 'sentence' (found: body, label)") { _ = try self.task(noText) }
    let noTextTSV = try folder(["train.tsv": "body\tlabel\na\t0\n", "dev.tsv": ""])
    assertError("\(noTextTSV.path)/train.tsv:1: no column 'text' or 'sentence' (found: body, label)") { _ = try self.task(noTextTSV) }
    let unpaired = try folder(["train.jsonl": Self.pairs, "dev.jsonl": "{\"text\": \"a\", \"label\": \"entailment\"}\n"])
    assertError("\(unpaired.path)/dev.jsonl:1: no field 'text_pair'") { _ = try self.load(unpaired, "dev") }
    let file = missing.appendingPathComponent("train.jsonl")
    assertError("\(file.path): not a folder (a task folder holds train and dev files)") { _ = try self.task(file) }
    let badName = try folder(["train.jsonl": Self.pairs, "dev.jsonl": Self.pairs], name: "my task")
    assertError("\(badName.path): folder name 'my task' cannot name a task (up to 64 ASCII letters, digits, '.', '_', '-'; not first '.' or '-'); "
                  + "set task.json's \"name\"") { _ = try self.task(badName) }
    let builtIn = try folder(["train.jsonl": Self.pairs, "dev.jsonl": Self.pairs], name: "RTE")
    assertError("\(builtIn.path): folder name 'RTE' is the built-in task rte's; set task.json's \"name\" to another") {
      _ = try self.task(builtIn)
    }
    try Data("{\"name\": \"rte-copy\"}".utf8).write(to: builtIn.appendingPathComponent("task.json"))
    XCTAssertEqual(try task(builtIn).name, "rte-copy")
  }

  func testTaskFileErrors() throws {
    let dir = try folder(["train.jsonl": Self.pairs, "dev.jsonl": Self.pairs])
    let path = dir.appendingPathComponent("task.json").path
    func check(_ json: String, _ expected: String, line: UInt = #line) throws {
      try Data(json.utf8).write(to: URL(fileURLWithPath: path))
      assertError("\(path): \(expected)", line: line) { _ = try self.task(dir) }
    }
    try check("{\"metric\": \"auc\"}", "unknown metric 'auc' (known: accuracy, f1, mcc, pearson, spearman)")
    try check("{\"metrics\": \"f1\"}", "unknown key 'metrics' (known: name, columns, labels, metric)")
    try check("{\"columns\": {\"txt\": \"a\"}}", "columns: unknown key 'txt' (known: text, text_pair, label, id)")
    try check("{\"columns\": {\"text\": \"a\", \"label\": \"a\"}}", "columns: 'a' is given for both text and label")
    try check("{\"columns\": [\"a\"]}", "columns is an array, not an object")
    try check("{\"labels\": [\"a\", \"b\", \"a\"]}", "labels: 'a' is listed twice")
    try check("{\"labels\": [1, \"1\"]}", "labels: '1' is listed twice")
    try check("{\"labels\": [\"a\"]}", "labels: a classification task needs at least two, found 1")
    try check("{\"labels\": [\"a\", \"\"]}", "labels[1]: empty label")
    try check("{\"labels\": [\"a\", true]}", "labels[1] is a boolean, not a string or a number")
    try check("{\"metric\": \"pearson\", \"labels\": [\"a\", \"b\"]}", "labels: a regression task (metric pearson) has no label set")
    try check("{\"name\": 3}", "name is a number, not a string")
    try check("{\"name\": \"a/b\"}", "name 'a/b' cannot name a task (up to 64 ASCII letters, digits, '.', '_', '-'; not first '.' or '-'); set task.json's \"name\"")
    try check("{\"name\": \"wnli\"}", "name 'wnli' is the built-in task wnli's; set task.json's \"name\" to another")
    try check("{\"metric\": \"f1\", \"labels\": [\"a\", \"b\", \"c\"]}",
              "metric f1 needs exactly two labels (class 1 is the positive one), the task has 3: a, b, c")
    try check("{\"metric\": \"f1\",}", "not valid JSON (line 1: expected a string key)")
    try check("[]", "expected a JSON object, found an array")
    // f1 on an inferred label set of three
    let three = try folder(["train.tsv": "text\tlabel\na\tx\nb\ty\nc\tz\n", "dev.tsv": "text\tlabel\na\tx\n",
                            "task.json": "{\"metric\": \"f1\"}"])
    assertError("\(three.path)/task.json: metric f1 needs exactly two labels (class 1 is the positive one), the task has 3: x, y, z") {
      _ = try self.task(three)
    }
    try Data("{\"metric\": \"mcc\"}".utf8).write(to: three.appendingPathComponent("task.json"))
    XCTAssertEqual(try task(three).metricNames, ["mcc", "accuracy"])
  }

  // MARK: identity

  func testTheCatalogFindsUserTasksByName() throws {
    let dir = try folder(["train.jsonl": Self.pairs, "dev.jsonl": Self.pairs])
    var catalog = TaskCatalog()
    XCTAssertEqual(try catalog.resolve("rte", flag: "--task"), try TaskDescriptor.named("rte"))
    let t = try catalog.resolve(dir.path, flag: "--task")
    XCTAssertEqual(try catalog.resolve(dir.path + "/", flag: "--task"), t, "the same folder twice is one task")
    XCTAssertEqual(catalog.userTasks.count, 1)
    XCTAssertEqual(try catalog.named("my-task"), t)
    XCTAssertEqual(try catalog.named("cola").name, "cola")
    assertError("unknown task 'my-task' (known: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, rt-vader)") {
      _ = try TaskCatalog().named("my-task")
    }
    let other = try folder(["train.jsonl": Self.pairs, "dev.jsonl": Self.pairs], name: "My-Task")
    assertError("--tasks: \(dir.path) and \(other.path) both hold a task named 'My-Task' (letter case aside); "
                  + "set another task.json \"name\" in one") { try catalog.resolve(other.path, flag: "--tasks") }
    assertError("--task nowhere: no such task (built in: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, rt-vader; "
                  + "or the path of a folder with train and dev files)") { try catalog.resolve("nowhere", flag: "--task") }
  }
}

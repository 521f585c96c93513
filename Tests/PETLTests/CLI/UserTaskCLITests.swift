import Foundation
import XCTest
@testable import PETLModel
@testable import PETLData

/// A task of the user's own through the built binary: GLUE's RTE rewritten as JSON Lines and as CSV
/// with other column names trains to exactly the built-in task's numbers, `predict --output` joins
/// back to the user's rows, and bad folders fail in one line.
final class UserTaskCLITests: XCTestCase {
  static let glue = TestSupport.glueDir
  /// Small cells (as GridTests' `tiny`), one BLAS thread so every run computes bit-identically.
  static let tiny = ["--max-train", "24", "--max-eval", "32", "--max-length", "24", "--epochs", "1",
                     "--batch-size", "8", "--no-prefix-cache", "--lr", "5e-3", "--modules", "layernorm"]
  static let env = ["OPENBLAS_NUM_THREADS": "1"]

  func run(_ args: [String]) throws -> (status: Int32, output: String) {
    try TestSupport.launch([TestSupport.binary] + args + ["--model", TestSupport.modelDir.path], extra: Self.env, timeout: 300)
  }

  /// RTE's rows as the built-in reader gives them.
  static func rte(_ split: String) throws -> (task: TaskDescriptor, rows: [Example]) {
    let task = try TaskDescriptor.named("rte")
    return (task, try loadExamples(task: task, dataDir: glue, split: split))
  }

  /// RTE as JSON Lines with the default field names (`text`, `text_pair`, `label` as strings), no task file.
  static func writeJSONLines(to dir: URL) throws {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for split in ["train", "dev"] {
      let (task, rows) = try rte(split)
      var text = ""
      for e in rows {
        let object: [String: Any] = ["text": e.textA, "text_pair": e.textB!, "label": task.labelNames[Int(e.label)]]
        text += String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self) + "\n"
      }
      try Data(text.utf8).write(to: dir.appendingPathComponent("\(split).jsonl"))
    }
  }

  /// RTE as RFC 4180 CSV with its own column names (every field quoted, quotes doubled, CRLF), an id
  /// per row that is not its index, and a task.json naming the columns and the label order.
  static func writeCSV(to dir: URL, name: String = "rte-csv") throws {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    func quoted(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
    for split in ["train", "dev"] {
      let (task, rows) = try rte(split)
      var text = "pair_id,premise,hypothesis,gold\r\n"
      for (i, e) in rows.enumerated() {
        text += [quoted("\(split)-\(1000 + i)"), quoted(e.textA), quoted(e.textB!), task.labelNames[Int(e.label)]]
          .joined(separator: ",") + "\r\n"
      }
      try Data(text.utf8).write(to: dir.appendingPathComponent("\(split).csv"))
    }
    try Data("""
      {"name": "\(name)", "metric": "accuracy", "labels": ["entailment", "not_entailment"],
       "columns": {"text": "premise", "text_pair": "hypothesis", "label": "gold", "id": "pair_id"}}
      """.utf8).write(to: dir.appendingPathComponent("task.json"))
  }

  func trainReport(_ task: String, _ out: URL, extra: [String] = []) throws -> (json: [String: Any], output: String) {
    let run = try self.run(["train", "--task", task, "--data-dir", Self.glue.path, "--output", out.path, "--quiet"] + Self.tiny + extra)
    XCTAssertEqual(run.status, 0, run.output)
    return (try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as! [String: Any], run.output)
  }

  /// The done-when: the same training run on a user task built from RTE's rows gives exactly
  /// the built-in task's dev metric (and training losses), in JSON Lines and in CSV with a task file.
  func testRTEAsAUserTaskTrainsToTheBuiltInNumbers() throws {
    _ = try TestSupport.requireModel()
    let out = try temporaryFolder("petl-usertask")
    let jsonl = out.appendingPathComponent("rte-jsonl"), csv = out.appendingPathComponent("csv-folder")
    try Self.writeJSONLines(to: jsonl)
    try Self.writeCSV(to: csv)
    let builtIn = try trainReport("rte", out.appendingPathComponent("rte.json"))
    let fromJSONL = try trainReport(jsonl.path, out.appendingPathComponent("jsonl.json"))
    let fromCSV = try trainReport(csv.path, out.appendingPathComponent("csv.json"))
    XCTAssertTrue(fromJSONL.output.contains("task rte-jsonl: \(jsonl.path)/{train.jsonl, dev.jsonl}; text=text, text_pair=text_pair, label=label; "
                                            + "labels entailment, not_entailment (from the training labels, sorted); metric accuracy"), fromJSONL.output)
    XCTAssertTrue(fromCSV.output.contains("task rte-csv: \(csv.path)/{train.csv, dev.csv, task.json}; text=premise, text_pair=hypothesis, "
                                          + "label=gold, id=pair_id; labels entailment, not_entailment (from task.json); metric accuracy"), fromCSV.output)
    XCTAssertEqual(builtIn.json["task"] as? String, "rte")
    XCTAssertEqual(fromJSONL.json["task"] as? String, "rte-jsonl")
    XCTAssertEqual(fromCSV.json["task"] as? String, "rte-csv")
    let dev = builtIn.json["dev"] as! [String: Double]
    XCTAssertEqual(dev.keys.sorted(), ["accuracy"])
    XCTAssertEqual(fromJSONL.json["dev"] as! [String: Double], dev)
    XCTAssertEqual(fromCSV.json["dev"] as! [String: Double], dev)
    let losses = builtIn.json["train_losses"] as! [Double]
    XCTAssertEqual(fromJSONL.json["train_losses"] as! [Double], losses)
    XCTAssertEqual(fromCSV.json["train_losses"] as! [Double], losses)
    for report in [builtIn, fromJSONL, fromCSV] {
      XCTAssertEqual((report.json["result"] as! [String: Any])["primary_metric"] as? String, "accuracy")
    }
  }

  /// `predict --output` on the CSV task names each row by the file's id and gives the predicted label;
  /// its outputs are the built-in task's, whose rows are named by their index.
  func testPredictOutputJoinsBackToTheUsersRows() throws {
    _ = try TestSupport.requireModel()
    let out = try temporaryFolder("petl-usertask")
    let csv = out.appendingPathComponent("csv-folder")
    try Self.writeCSV(to: csv)
    let adapter = out.appendingPathComponent("a.safetensors")
    _ = try trainReport(csv.path, out.appendingPathComponent("csv.json"), extra: ["--save-adapter", adapter.path])
    func predict(_ task: String, _ file: String) throws -> (rows: [[String]], output: String) {
      let tsv = out.appendingPathComponent(file)
      let run = try self.run(["predict", "--task", task, "--data-dir", Self.glue.path, "--adapter", adapter.path,
                              "--max-examples", "12", "--max-length", "24", "--output", tsv.path])
      XCTAssertEqual(run.status, 0, run.output)
      let text = try String(contentsOf: tsv, encoding: .utf8)
      XCTAssertTrue(text.hasSuffix("\n"))
      return (text.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }, run.output)
    }
    let user = try predict(csv.path, "user.tsv"), builtIn = try predict("rte", "rte.tsv")
    let header = ["index", "id", "logit_entailment", "logit_not_entailment", "label", "prediction"]
    XCTAssertEqual(user.rows[0], header)
    XCTAssertEqual(builtIn.rows[0], header)
    XCTAssertEqual(user.rows.count, 13)
    let (task, gold) = try Self.rte("dev")
    for i in 0..<12 {
      let u = user.rows[i + 1], b = builtIn.rows[i + 1]
      XCTAssertEqual(u[0], String(i))
      XCTAssertEqual(u[1], "dev-\(1000 + i)", "the id column of the user's file")
      XCTAssertEqual(b[1], String(i), "a built-in task's rows are named by their index")
      XCTAssertEqual(Array(u[2...]), Array(b[2...]), "same outputs, gold and predicted label as the built-in task")
      XCTAssertEqual(u[4], task.labelNames[Int(gold[i].label)])
      let logits = [Float(u[2])!, Float(u[3])!]
      XCTAssertEqual(u[5], logits[1] > logits[0] ? "not_entailment" : "entailment", "the label of the first largest logit")
    }
    XCTAssertTrue(user.output.contains("rte-csv dev (12 examples): accuracy="), user.output)
    XCTAssertEqual(user.output.split(separator: "\n").last.map { $0.replacingOccurrences(of: "rte-csv", with: "rte") },
                   builtIn.output.split(separator: "\n").last.map(String.init))
  }

  /// Regression: one `score` column, and the prediction is the score.
  func testPredictOutputForRegression() throws {
    _ = try TestSupport.requireModel()
    let tsv = try temporaryFolder("petl-usertask").appendingPathComponent("stsb.tsv")
    let run = try self.run(["predict", "--task", "stsb", "--data-dir", Self.glue.path, "--max-examples", "3",
                            "--max-length", "24", "--output", tsv.path])
    XCTAssertEqual(run.status, 0, run.output)
    let rows = try String(contentsOf: tsv, encoding: .utf8).split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
    XCTAssertEqual(rows[0], ["index", "id", "score", "label", "prediction"])
    let gold = try loadExamples(task: TaskDescriptor.named("stsb"), dataDir: Self.glue, split: "dev")
    for i in 0..<3 {
      XCTAssertEqual(rows[i + 1][0], String(i))
      XCTAssertEqual(rows[i + 1][1], String(i))
      XCTAssertEqual(rows[i + 1][3], String(gold[i].label))
      XCTAssertEqual(rows[i + 1][4], rows[i + 1][2])
    }
  }

  /// A bad folder or row: one error line naming the file (and line) or flag, a non-zero exit.
  func testBadUserTasksFailInOneLine() throws {
    _ = try TestSupport.requireModel()
    let out = try temporaryFolder("petl-usertask")
    let dir = out.appendingPathComponent("bad")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try Data("{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"y\"}\n".utf8).write(to: dir.appendingPathComponent("train.jsonl"))
    try Data("{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"label\": \"z\"}\n".utf8).write(to: dir.appendingPathComponent("dev.jsonl"))
    let small = ["--max-train", "2", "--max-steps", "1", "--max-length", "16"]
    assertOneErrorLine(try run(["train", "--task", dir.path] + small), "\(dir.path)/dev.jsonl:2: unknown label 'z' (expected one of: x, y)")
    assertOneErrorLine(try run(["predict", "--task", dir.path, "--max-length", "16"]), "\(dir.path)/dev.jsonl:2: unknown label 'z'")
    assertOneErrorLine(try run(["grid", "--tasks", "rt-vader,\(dir.path)", "--modules", "classifier",
                       "--results", out.appendingPathComponent("grid").path] + small),
                      "\(dir.path)/dev.jsonl:2: unknown label 'z'")
    try Data("text,label\na,x\n".utf8).write(to: dir.appendingPathComponent("train.csv"))
    assertOneErrorLine(try run(["train", "--task", dir.path] + small), "\(dir.path): train.csv and train.jsonl are both the train split; keep one")
    assertOneErrorLine(try run(["grid", "--tasks", "\(dir.path)-missing", "--plan-only"]), "--tasks \(dir.path)-missing: no such task")
  }
}

extension UserTaskCLITests {
  /// A user task end to end on another family (RoBERTa, byte-level BPE): train an adapter on the CSV
  /// task, export it with `--task FOLDER`; the exported config names the task's labels in its order,
  /// and `predict` on the export writes exactly what `predict` with the adapter writes (ids included).
  func testUserTaskExportsWithItsLabels() throws {
    let model = try FamilyFixtures.folder(.roberta)
    addTeardownBlock { try? FileManager.default.removeItem(at: model) }
    func run(_ args: [String]) throws -> (status: Int32, output: String) {
      try TestSupport.launch([TestSupport.binary] + args, extra: Self.env, timeout: 300)
    }
    let work = try temporaryFolder("petl-usertask-export")
    let task = work.appendingPathComponent("my-rte")
    try Self.writeCSV(to: task, name: "my-rte")
    let adapter = work.appendingPathComponent("adapter.safetensors")
    let train = try run(["train", "--model", model.path, "--task", task.path, "--quiet", "--save-adapter", adapter.path] + Self.tiny)
    XCTAssertEqual(train.status, 0, train.output)
    let out = work.appendingPathComponent("export")
    let export = try run(["export", "--model", model.path, "--adapter", adapter.path, "--task", task.path, "--output", out.path])
    XCTAssertEqual(export.status, 0, export.output)
    let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("config.json"))) as! [String: Any]
    XCTAssertEqual(config["id2label"] as? [String: String], ["0": "entailment", "1": "not_entailment"])
    XCTAssertEqual(config["architectures"] as? [String], ["RobertaForSequenceClassification"])
    let common = ["--task", task.path, "--max-examples", "32", "--max-length", "24"]
    let a = work.appendingPathComponent("a.tsv"), b = work.appendingPathComponent("b.tsv")
    let pa = try run(["predict", "--model", model.path, "--adapter", adapter.path, "--output", a.path] + common)
    XCTAssertEqual(pa.status, 0, pa.output)
    let pb = try run(["predict", "--model", out.path, "--output", b.path] + common)
    XCTAssertEqual(pb.status, 0, pb.output)
    XCTAssertEqual(try String(contentsOf: a, encoding: .utf8), try String(contentsOf: b, encoding: .utf8))
    XCTAssertTrue(try String(contentsOf: b, encoding: .utf8).contains("\tdev-1000\t"), "the file's ids")
  }
}

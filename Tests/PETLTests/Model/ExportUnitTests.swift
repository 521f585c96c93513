import Foundation
import XCTest
@testable import PETLModel
import PETLSupport

/// The parts of an export on their own: the state-dict names per family, config.json edited in its
/// own text, the PEFT LN-tuning plan, and the staged folder.
final class ExportUnitTests: XCTestCase {
  func testSequenceClassificationNames() {
    let cases: [(EncoderFamily, String, String)] = [
      (.bert, "pooler.dense.weight", "bert.pooler.dense.weight"),
      (.bert, "classifier.bias", "classifier.bias"),
      (.bert, "encoder.layer.0.output.LayerNorm.weight", "bert.encoder.layer.0.output.LayerNorm.weight"),
      (.roberta, "classifier.dense.weight", "classifier.dense.weight"),
      (.roberta, "classifier.out_proj.bias", "classifier.out_proj.bias"),
      (.roberta, "embeddings.token_type_embeddings.weight", "roberta.embeddings.token_type_embeddings.weight"),
      (.electra, "embeddings_project.weight", "electra.embeddings_project.weight"),
      (.electra, "classifier.dense.bias", "classifier.dense.bias"),
      (.distilbert, "pre_classifier.weight", "pre_classifier.weight"),
      (.distilbert, "classifier.weight", "classifier.weight"),
      (.distilbert, "transformer.layer.1.ffn.lin2.bias", "distilbert.transformer.layer.1.ffn.lin2.bias"),
    ]
    for (family, ours, theirs) in cases { XCTAssertEqual(family.sequenceClassificationName(ours), theirs, "\(family)") }
    // Every slot of every family maps to a distinct name; exactly the head is unprefixed.
    for family in EncoderFamily.allCases {
      let layout = ParameterLayout(dims: TestSupport.tinyDims(family))
      let names = layout.slots.map { family.sequenceClassificationName($0.name) }
      XCTAssertEqual(Set(names).count, names.count, "\(family)")
      let unprefixed = layout.slots.filter { !family.sequenceClassificationName($0.name).hasPrefix(family.checkpointPrefix) }
      XCTAssertEqual(unprefixed.map(\.name), layout.slots.filter { $0.module == .classifier }.map(\.name), "\(family)")
    }
  }

  func testConfigKeepsEveryMemberAsWritten() throws {
    let original = #"{"a": 1.0, "nested": {"x": [1, 2.50, "s\"q"]}, "architectures": ["BertModel"], "flag": true, "dtype": "float16", "z": null}"#
    let data = try ExportConfig.make(from: Data(original.utf8), path: "config.json", family: .roberta,
                                     labels: .classification(["no", "yes"]))
    let text = try JSONObjectText(data, path: "out")
    XCTAssertEqual(text.members.map(\.key), ["a", "nested", "architectures", "flag", "dtype", "z", "id2label", "label2id", "problem_type"])
    XCTAssertEqual(text.members[0].text, #""a": 1.0"#, "1.0 stays a float")
    XCTAssertEqual(text.members[1].text, #""nested": {"x": [1, 2.50, "s\"q"]}"#)
    XCTAssertEqual(text.members[3].text, #""flag": true"#)
    let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    XCTAssertEqual(object["architectures"] as? [String], ["RobertaForSequenceClassification"])
    XCTAssertEqual(object["id2label"] as? [String: String], ["0": "no", "1": "yes"])
    XCTAssertEqual(object["label2id"] as? [String: Int], ["no": 0, "yes": 1])
    XCTAssertEqual(object["problem_type"] as? String, "single_label_classification")
    XCTAssertEqual(object["dtype"] as? String, "float32", "the export's weights are float32")
    XCTAssertNil(object["num_labels"], "not added: transformers derives it from id2label")
  }

  func testRegressionConfigAndNumLabels() throws {
    let data = try ExportConfig.make(from: Data(#"{"num_labels": 3, "id2label": {"0": "a"}}"#.utf8), path: "c", family: .bert, labels: .regression)
    let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    XCTAssertEqual(object["num_labels"] as? Int, 1, "a num_labels already there agrees")
    XCTAssertEqual(object["id2label"] as? [String: String], ["0": "score"])
    XCTAssertEqual(object["problem_type"] as? String, "regression")
    XCTAssertThrowsError(try ExportConfig.make(from: Data("{}".utf8), path: "c", family: .bert, labels: .classification(["a", "a"])))
    XCTAssertThrowsError(try ExportConfig.make(from: Data("[1]".utf8), path: "c.json", family: .bert, labels: .regression)) {
      XCTAssertEqual(($0 as? PETLError)?.message, "c.json: not a JSON object")
    }
  }

  func testJSONObjectTextSetsInPlaceAndDropsRepeats() throws {
    var t = try JSONObjectText(Data(#"{"k": 1, "a": {"}": "]"}, "k": 2}"#.utf8), path: "x")
    XCTAssertEqual(t.members.map(\.key), ["k", "a", "k"])
    t.set("k", json: "3")
    t.set("new", json: #""v""#)
    XCTAssertEqual(String(decoding: t.data, as: UTF8.self), "{\n  \"k\": 3,\n  \"a\": {\"}\": \"]\"},\n  \"new\": \"v\"\n}\n")
  }

  func testPEFTPlanForLayerNormAdapters() throws {
    let layout = ParameterLayout(dims: TestSupport.tinyDims(.distilbert))
    // the gain alone: LN tuning still stores the whole module
    let plan = try PEFTExport.plan(layout: layout, adapterTensors: ["transformer.layer.2.sa_layer_norm.weight", "classifier.weight"], source: "a")
    XCTAssertEqual(plan.targetModules, ["distilbert.transformer.layer.2.sa_layer_norm"])
    XCTAssertEqual(plan.modulesToSave, ["pre_classifier", "classifier"])
    XCTAssertEqual(plan.tensors.map(\.name), [
      "base_model.model.distilbert.transformer.layer.2.sa_layer_norm.ln_tuning_layers.weight",
      "base_model.model.distilbert.transformer.layer.2.sa_layer_norm.ln_tuning_layers.bias",
      "base_model.model.pre_classifier.weight", "base_model.model.pre_classifier.bias",
      "base_model.model.classifier.weight", "base_model.model.classifier.bias",
    ], "the whole module and the whole head")
    let bert = ParameterLayout(dims: TestSupport.tinyDims(.bert))
    XCTAssertEqual(try PEFTExport.plan(layout: bert, adapterTensors: ["embeddings.LayerNorm.bias"], source: "a").modulesToSave, ["classifier"],
                   "BERT's pooler stays in the base model")
    XCTAssertThrowsError(try PEFTExport.plan(layout: bert, adapterTensors: ["pooler.dense.weight"], source: "a.st")) {
      XCTAssertEqual(($0 as? PETLError)?.message.hasPrefix("a.st: tensor 'pooler.dense.weight' is neither a LayerNorm nor the head"), true, "\($0)")
    }
    XCTAssertThrowsError(try PEFTExport.plan(layout: bert, adapterTensors: ["classifier.weight", "classifier.bias"], source: "a")) {
      XCTAssertTrue("\($0)".contains("no LayerNorm tensor"), "\($0)")
    }
  }

  func testStagedFolderAppearsWholeOrNotAtAll() throws {
    let root = try temporaryFolder("petl-staged")
    let dest = root.appendingPathComponent("a/b/out")
    let staged = try StagedFolder(destination: dest, flag: "--output")
    try Data("x".utf8).write(to: staged.staging.appendingPathComponent("f"))
    XCTAssertFalse(FileManager.default.fileExists(atPath: dest.path), "nothing under the name before commit")
    try staged.commit()
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dest.path), ["f"])
    XCTAssertThrowsError(try StagedFolder(destination: dest, flag: "--output")) {
      XCTAssertEqual(($0 as? PETLError)?.message, "--output \(dest.path): exists and is not empty (choose a new folder)")
    }
    let other = root.appendingPathComponent("other")
    let failed = try StagedFolder(destination: other, flag: "--output")
    try Data("x".utf8).write(to: failed.staging.appendingPathComponent("f"))
    failed.discard()
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted(), ["a"], "a discarded export leaves nothing")
  }
}

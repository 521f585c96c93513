import Foundation
import XCTest
@testable import PETLModel
@testable import PETLData
@testable import PETLTraining
import PETLSupport

/// The package root, found from this file so tests run from any working directory.
private let packageRoot = TestSupport.root

final class CheckpointTests: XCTestCase {
  private var folder: URL!

  override func setUpWithError() throws {
    folder = FileManager.default.temporaryDirectory.appendingPathComponent("petl-ckpt-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

  // MARK: reading what the reference library wrote

  func testReadsFileWrittenByPythonSafetensors() throws {
    let url = packageRoot.appendingPathComponent("Tests/Fixtures/checkpoint/python-written.safetensors")
    let st = try SafeTensors.open(url)
    XCTAssertEqual(st.metadata, ["format": "pt", "note": "fixture"])
    // The Rust writer orders by alignment, then name; `names` follows the bytes.
    XCTAssertEqual(st.names, ["position_ids", "double", "single", "int32", "brain", "half", "bytes"])
    XCTAssertEqual(st.info("half"), .init(dtype: .f16, shape: [8]))
    XCTAssertEqual(st.info("single"), .init(dtype: .f32, shape: [2, 3]))
    XCTAssertNil(st.info("absent"))

    let half = try st.floats("half")
    XCTAssertEqual(Array(half[0..<5]), [1.0, -2.5, 65504.0, 0x1p-14, 0x1p-24])
    XCTAssertEqual(half[5], .infinity)
    XCTAssertEqual(half[6].bitPattern, (-0.0 as Float).bitPattern)
    XCTAssertEqual(half[7], 0.333251953125)
    XCTAssertEqual(try st.floats("brain"), [1.0, -3.140625, 3.3895313892515355e38, 0x1p-133])
    XCTAssertEqual(try st.floats("single"), [0.5, -1.25, 3.0, 1e-3, 7.0, -0.0])
    XCTAssertEqual(try st.floats("double"), [0.1, -2.0])
    XCTAssertEqual(try st.integers("position_ids"), [0, 1, 2, -5, 1 << 40])
    XCTAssertEqual(try st.integers("int32"), [-7, Int64(Int32.max)])
    XCTAssertEqual(try st.integers("bytes"), [0, 255])

    XCTAssertThrowsError(try st.integers("single")) { error in
      XCTAssertEqual("\(error)", "\(url.path): tensor 'single' is F32, not an integer type (I64, I32, I16, I8, U8)")
    }
    XCTAssertThrowsError(try st.floats("position_ids")) { error in
      XCTAssertEqual("\(error)", "\(url.path): tensor 'position_ids' is I64, not a float type (F32, F16, BF16, F64)")
    }
    XCTAssertThrowsError(try st.floats("nope")) { XCTAssertEqual("\($0)", "\(url.path): no tensor named 'nope'") }
    var three = [Float](repeating: 0, count: 3)
    XCTAssertThrowsError(try three.withUnsafeMutableBufferPointer { try st.copyFloats("single", into: $0) }) {
      XCTAssertEqual("\($0)", "\(url.path): tensor 'single' has 6 values, destination holds 3")
    }
  }

  func testHalfWideningIsExactForEveryBitPattern() {
    // Only the finite, non-NaN halves have a Float16 to compare with; the conversion must agree on all.
    #if !(os(macOS) && arch(x86_64))
    for bits in UInt16.min...UInt16.max {
      let reference = Float(Float16(bitPattern: bits))
      let ours = floatFromHalfBits(bits)
      if reference.isNaN { XCTAssertTrue(ours.isNaN); continue }
      XCTAssertEqual(ours.bitPattern, reference.bitPattern, "half bits \(bits)")
    }
    #endif
  }

  // MARK: writing

  func testWriteThenReadRoundTripsBitsShapesOrderAndMetadata() throws {
    let url = folder.appendingPathComponent("adapter.safetensors")
    let a: [Float] = [1, -2, .pi, .leastNonzeroMagnitude, -.greatestFiniteMagnitude, 0]
    let b: [Float] = [42]
    let empty: [Float] = []
    try a.withUnsafeBufferPointer { pa in
      try b.withUnsafeBufferPointer { pb in
        try empty.withUnsafeBufferPointer { pe in
          try SafeTensors.write(
            to: url,
            tensors: [("z.weight", [2, 3], pa), ("a.bias", [], pb), ("nothing", [0, 4], pe)],
            metadata: ["cell": "rte layernorm@all", "quote": "say \"hi\"/\\"])
        }
      }
    }
    let st = try SafeTensors.open(url)
    XCTAssertEqual(st.names.first, "z.weight", "tensors stay in the order given")
    XCTAssertEqual(Set(st.names), ["z.weight", "a.bias", "nothing"])
    XCTAssertEqual(st.metadata, ["cell": "rte layernorm@all", "quote": "say \"hi\"/\\"])
    XCTAssertEqual(st.info("z.weight"), .init(dtype: .f32, shape: [2, 3]))
    XCTAssertEqual(st.info("a.bias"), .init(dtype: .f32, shape: []))
    XCTAssertEqual(try st.floats("z.weight").map(\.bitPattern), a.map(\.bitPattern))
    XCTAssertEqual(try st.floats("a.bias"), [42])
    XCTAssertEqual(try st.floats("nothing"), [])

    let bytes = try Data(contentsOf: url)
    let headerLength = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    XCTAssertEqual(headerLength % 8, 0, "header padded to 8 bytes")
    XCTAssertEqual(bytes.count, 8 + Int(headerLength) + 4 * 7)
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path)
    XCTAssertEqual(leftovers, ["adapter.safetensors"], "no temporary file left behind")
  }

  func testWriteRejectsShapeThatDoesNotMatchValues() throws {
    let url = folder.appendingPathComponent("bad.safetensors")
    let v: [Float] = [1, 2, 3]
    XCTAssertThrowsError(try v.withUnsafeBufferPointer {
      try SafeTensors.write(to: url, tensors: [("w", [2, 2], $0)], metadata: [:])
    }) { XCTAssertEqual("\($0)", "\(url.path): tensor 'w' has 3 values, shape [2, 2] needs 4") }
    XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
  }

  // MARK: bad files

  /// Writes `8-byte length | header | data` where the length can lie.
  private func rawFile(_ header: String, dataBytes: Int, claimedLength: UInt64? = nil) throws -> URL {
    let url = folder.appendingPathComponent("raw-\(UUID().uuidString).safetensors")
    var length = (claimedLength ?? UInt64(header.utf8.count)).littleEndian
    var bytes = Data(bytes: &length, count: 8)
    bytes.append(contentsOf: Array(header.utf8))
    bytes.append(Data(count: dataBytes))
    try bytes.write(to: url)
    return url
  }

  private func assertOpenFails(_ url: URL, _ problem: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try SafeTensors.open(url), file: file, line: line) { error in
      XCTAssertTrue(error is PETLError, file: file, line: line)
      XCTAssertEqual("\(error)", "\(url.path): \(problem)", file: file, line: line)
    }
  }

  func testTruncatedFile() throws {
    let url = folder.appendingPathComponent("short.safetensors")
    try Data([1, 2, 3]).write(to: url)
    assertOpenFails(url, "truncated: 3 bytes, shorter than the 8-byte header length")
  }

  func testHeaderLengthBeyondFile() throws {
    let url = try rawFile(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 4, claimedLength: 1000)
    assertOpenFails(url, "header length 1000 runs past the end of the file (66 bytes)")
  }

  func testInvalidJSONHeader() throws {
    let url = try rawFile(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]"#, dataBytes: 4)
    XCTAssertThrowsError(try SafeTensors.open(url)) { error in
      XCTAssertTrue("\(error)".hasPrefix("\(url.path): header is not valid JSON ("), "\(error)")
      XCTAssertFalse("\(error)".contains("\n"))
    }
    assertOpenFails(try rawFile("[1,2]", dataBytes: 0), "header is not a JSON object")
  }

  func testMalformedEntry() throws {
    let url = try rawFile(#"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, dataBytes: 4)
    XCTAssertThrowsError(try SafeTensors.open(url)) { error in
      XCTAssertTrue("\(error)".hasPrefix("\(url.path): tensor 'w' header entry is malformed ("), "\(error)")
    }
    let meta = try rawFile(#"{"__metadata__":{"n":1}}"#, dataBytes: 0)
    assertOpenFails(meta, "__metadata__ must map strings to strings")
  }

  func testOverlappingOffsets() throws {
    let url = try rawFile(
      #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
      dataBytes: 12)
    assertOpenFails(url, "tensor 'b' at byte 4 overlaps tensor 'a' (ends at 8)")
  }

  func testOffsetsBeyondDataSection() throws {
    let url = try rawFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 4)
    assertOpenFails(url, "tensor 'a' data_offsets [0, 8] run past the data section (4 bytes)")
  }

  func testOffsetsOutOfOrder() throws {
    let url = try rawFile(#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#, dataBytes: 8)
    assertOpenFails(url, "tensor 'a' has data_offsets [8, 4] out of order")
  }

  func testSizeNotMatchingShape() throws {
    let url = try rawFile(#"{"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8)
    assertOpenFails(url, "tensor 'a' holds 8 bytes but shape [3] of BF16 needs 6")
  }

  func testHoleAndTrailingBytes() throws {
    let hole = try rawFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8)
    assertOpenFails(hole, "4 unused bytes before tensor 'a' at byte 4")
    let tail = try rawFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 6)
    assertOpenFails(tail, "2 bytes after the last tensor are not described by the header")
  }

  func testUnknownDType() throws {
    let url = try rawFile(#"{"a":{"dtype":"F24","shape":[1],"data_offsets":[0,3]}}"#, dataBytes: 3)
    assertOpenFails(url, "tensor 'a' has unknown dtype 'F24'")
  }

  func testMissingFile() {
    let url = folder.appendingPathComponent("absent.safetensors")
    XCTAssertThrowsError(try SafeTensors.open(url)) {
      XCTAssertTrue("\($0)".hasPrefix("\(url.path): cannot read file"), "\($0)")
    }
  }

  // MARK: the real checkpoint

  func testOpensRealMiniLMCheckpoint() throws {
    let model = packageRoot.appendingPathComponent("models/all-MiniLM-L6-v2")
    let url = model.appendingPathComponent("model.safetensors")
    guard FileManager.default.fileExists(atPath: url.path) else {
      return XCTFail("\(url.path) is missing: run launch/setup")
    }
    let st = try SafeTensors.open(url)
    XCTAssertEqual(st.names.count, 104)
    XCTAssertEqual(st.info("embeddings.word_embeddings.weight"), .init(dtype: .f32, shape: [30522, 384]))
    XCTAssertEqual(st.info("encoder.layer.5.intermediate.dense.weight"), .init(dtype: .f32, shape: [1536, 384]))
    XCTAssertEqual(try st.integers("embeddings.position_ids"), (0..<512).map(Int64.init))
    let gamma = try st.floats("encoder.layer.0.attention.output.LayerNorm.weight")
    XCTAssertEqual(gamma.count, 384)
    XCTAssertTrue(gamma.allSatisfy(\.isFinite))

    let config = try EncoderConfig.load(model.appendingPathComponent("config.json"))
    XCTAssertEqual(config, EncoderConfig(
      hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12, intermediateSize: 1536,
      maxPositionEmbeddings: 512, typeVocabSize: 2, vocabSize: 30522, layerNormEps: 1e-12,
      hiddenAct: .gelu, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1, classifierDropout: nil))
    XCTAssertEqual(config.headDim, 32)
  }

  // MARK: config.json

  private let goodConfig: [String: Any] = [
    "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16,
    "max_position_embeddings": 32, "type_vocab_size": 2, "vocab_size": 50, "layer_norm_eps": 1e-12,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0,
    "classifier_dropout": 0.25, "architectures": ["BertModel"], "pad_token_id": 0,
  ]

  private func configFile(_ edit: (inout [String: Any]) -> Void) throws -> URL {
    var object = goodConfig
    edit(&object)
    let url = folder.appendingPathComponent("config-\(UUID().uuidString).json")
    try JSONSerialization.data(withJSONObject: object).write(to: url)
    return url
  }

  private func assertConfigFails(_ edit: (inout [String: Any]) -> Void, _ problem: String,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
    let url = try configFile(edit)
    XCTAssertThrowsError(try EncoderConfig.load(url), file: file, line: line) {
      XCTAssertEqual("\($0)", "\(url.path): \(problem)", file: file, line: line)
    }
  }

  func testConfigReadsEveryField() throws {
    let config = try EncoderConfig.load(try configFile { _ in })
    XCTAssertEqual(config, EncoderConfig(
      hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16,
      maxPositionEmbeddings: 32, typeVocabSize: 2, vocabSize: 50, layerNormEps: 1e-12,
      hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0, classifierDropout: 0.25))
    XCTAssertNil(try EncoderConfig.load(try configFile { $0["classifier_dropout"] = NSNull() }).classifierDropout)
  }

  func testConfigErrorsNameFileAndField() throws {
    // As transformers: an absent field takes the config class's default (and is listed).
    let absent = try EncoderConfig.load(try configFile { $0["hidden_size"] = nil; $0["num_attention_heads"] = nil })
    XCTAssertEqual(absent.hiddenSize, 768)
    XCTAssertEqual(absent.numAttentionHeads, 12)
    XCTAssertEqual(absent.defaulted, ["hidden_size", "num_attention_heads"])
    try assertConfigFails({ $0["num_hidden_layers"] = "6" }, "field 'num_hidden_layers' must be an integer, got '6' (transformers refuses it too)")
    try assertConfigFails({ $0["vocab_size"] = 1.5 }, "field 'vocab_size' must be an integer, got 1.5 (transformers refuses it too)")
    try assertConfigFails({ $0["layer_norm_eps"] = true }, "field 'layer_norm_eps' must be a float, got true (transformers refuses it too)")
    try assertConfigFails({ $0["hidden_act"] = "gelu_new" }, "hidden_act 'gelu_new' is not supported (only 'gelu', the erf form)")
    try assertConfigFails({ $0["num_attention_heads"] = 3 }, "hidden_size 8 is not divisible by num_attention_heads 3")
    try assertConfigFails({ $0["hidden_dropout_prob"] = 1.5 }, "field 'hidden_dropout_prob' must be in [0, 1), got 1.5")
    try assertConfigFails({ $0["intermediate_size"] = 0 }, "field 'intermediate_size' must be positive, got 0")
  }

  /// `model_type` picks the family and its fields; what the engine does not compute is refused.
  func testConfigFamilies() throws {
    XCTAssertEqual(try EncoderConfig.load(try configFile { _ in }).family, .bert, "no model_type: BERT")
    let roberta = try EncoderConfig.load(try configFile {
      $0["model_type"] = "roberta"; $0["pad_token_id"] = 1; $0["max_position_embeddings"] = 34; $0["type_vocab_size"] = 1
    })
    XCTAssertEqual(roberta.family, .roberta)
    XCTAssertEqual(roberta.maxTokens, 32, "positions start at pad_token_id + 1")
    XCTAssertNoThrow(try roberta.checkMaxLength(32, pairs: true, configPath: "/m/config.json"))
    XCTAssertThrowsError(try roberta.checkMaxLength(33, pairs: false, configPath: "/m/config.json")) {
      XCTAssertEqual("\($0)", "--max-length 33: the model has max_position_embeddings 34, positions start at pad_token_id + 1 = 2 (/m/config.json)")
    }
    XCTAssertThrowsError(try roberta.checkMaxLength(3, pairs: true, configPath: "/m/config.json")) {
      XCTAssertEqual("\($0)", "--max-length 3: must be at least 4 to hold <s> and three </s> (sentence pairs)")
    }
    XCTAssertNoThrow(try roberta.checkTokenTypes(pairs: true, task: "RTE", configPath: "/m/config.json"),
                     "RoBERTa sends type 0 for both segments")
    let electra = try EncoderConfig.load(try configFile { $0["model_type"] = "electra"; $0["embedding_size"] = 4 })
    XCTAssertEqual(electra.family, .electra)
    XCTAssertEqual(electra.embeddingSize, 4)
    XCTAssertEqual(try EncoderConfig.load(try configFile { $0["embedding_size"] = 4 }).embeddingSize, 8,
                   "only ELECTRA reads embedding_size")
    let distil: [String: Any] = ["model_type": "distilbert", "dim": 8, "n_layers": 2, "n_heads": 2, "hidden_dim": 16,
                                 "max_position_embeddings": 32, "vocab_size": 50, "activation": "gelu", "dropout": 0.1,
                                 "attention_dropout": 0.1, "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": false,
                                 "pad_token_id": 0]
    let d = try EncoderConfig.load(try configFile { $0 = distil })
    XCTAssertEqual(d, EncoderConfig(family: .distilbert, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2,
                                    intermediateSize: 16, maxPositionEmbeddings: 32, typeVocabSize: 0, vocabSize: 50,
                                    layerNormEps: 1e-12, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1,
                                    classifierDropout: 0.2))
    XCTAssertNoThrow(try d.checkTokenTypes(pairs: true, task: "RTE", configPath: "/m/config.json"), "no token types at all")
    try assertConfigFails({ $0["model_type"] = "gpt2" },
                          "model_type 'gpt2' is not supported (supported: bert, roberta, electra, distilbert)")
    try assertConfigFails({ $0["model_type"] = 3 }, "field 'model_type' must be a string, got 3 (transformers refuses it too)")
    try assertConfigFails({ $0 = distil; $0["activation"] = "relu" }, "activation 'relu' is not supported (only 'gelu', the erf form)")
    try assertConfigFails({ $0 = distil; $0["sinusoidal_pos_embds"] = true },
                          "sinusoidal_pos_embds true is not supported (fixed sinusoidal positions)")
    try assertConfigFails({ $0 = distil; $0["n_heads"] = 3 }, "dim 8 is not divisible by n_heads 3")
    XCTAssertEqual(try EncoderConfig.load(try configFile { $0 = distil; $0["dim"] = nil }).hiddenSize, 768, "transformers' default dim")
    try assertConfigFails({ $0["model_type"] = "electra"; $0["embedding_size"] = 0 }, "field 'embedding_size' must be positive, got 0")
  }

  func testConfigThatIsNotJSON() throws {
    let url = folder.appendingPathComponent("config.json")
    try Data("hidden_size: 8".utf8).write(to: url)
    XCTAssertThrowsError(try EncoderConfig.load(url)) {
      XCTAssertEqual("\($0)", "\(url.path): not valid JSON (line 1: unexpected character 'h')")
    }
  }

  // MARK: inputs checked against the tables they index

  func testInputChecksNameTheFileOrFlag() throws {
    let config = try EncoderConfig.load(try configFile { _ in })  // vocab 50, 32 positions, 2 token types
    let path = "/m/config.json"
    XCTAssertNoThrow(try config.checkVocabulary(tokens: 50, file: "/m/vocab.txt"))
    XCTAssertNoThrow(try config.checkVocabulary(tokens: 40, file: "/m/vocab.txt"), "a padded table is fine")
    XCTAssertThrowsError(try config.checkVocabulary(tokens: 51, file: "/m/vocab.txt")) {
      XCTAssertEqual("\($0)", "/m/vocab.txt: 51 tokens but config.json vocab_size is 50")
    }
    XCTAssertNoThrow(try config.checkMaxLength(32, pairs: true, configPath: path))
    XCTAssertNoThrow(try config.checkMaxLength(2, pairs: false, configPath: path))
    XCTAssertThrowsError(try config.checkMaxLength(33, pairs: false, configPath: path)) {
      XCTAssertEqual("\($0)", "--max-length 33: the model has max_position_embeddings 32 (/m/config.json)")
    }
    XCTAssertThrowsError(try config.checkMaxLength(2, pairs: true, configPath: path)) {
      XCTAssertEqual("\($0)", "--max-length 2: must be at least 3 to hold [CLS] and two [SEP] (sentence pairs)")
    }
    let rte = try TaskDescriptor.named("rte"), vader = try TaskDescriptor.named("rt-vader")
    XCTAssertTrue(rte.isPair)
    XCTAssertFalse(vader.isPair)
    XCTAssertEqual(TaskDescriptor.all.filter(\.isPair).map(\.name), ["mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"])
    let oneType = try EncoderConfig.load(try configFile { $0["type_vocab_size"] = 1 })
    XCTAssertNoThrow(try oneType.checkInputs(task: vader, maxLength: 32, configPath: path))
    XCTAssertThrowsError(try oneType.checkInputs(task: rte, maxLength: 32, configPath: path)) {
      XCTAssertEqual("\($0)", "task rte encodes sentence pairs (token type 1) but the model has type_vocab_size 1 (/m/config.json)")
    }
  }

  /// A checkpoint's head for another label count is replaced whole (never half of it) and reported
  /// with both shapes.
  func testHeadForAnotherLabelCountIsFreshAndReported() throws {
    let dir = folder.appendingPathComponent("model")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try JSONSerialization.data(withJSONObject: goodConfig).write(to: dir.appendingPathComponent("config.json"))
    let config = try EncoderConfig.load(dir.appendingPathComponent("config.json"))
    let saved = EncoderModel(dims: ModelDims(config: config, numLabels: 3))
    saved.initialize(slots: saved.layout.slots, seed: 5)
    // classifier.weight for 3 labels, classifier.bias that would fit 2: a head to drop whole
    let bias: [Float] = [5, 5]
    try bias.withUnsafeBufferPointer { b in
      var tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] = saved.layout.slots
        .filter { $0.name != "classifier.bias" }
        .map { ($0.name, $0.shape, UnsafeBufferPointer(start: saved.pointer($0), count: $0.count)) }
      tensors.append(("classifier.bias", [2], b))
      try SafeTensors.write(to: dir.appendingPathComponent("model.safetensors"), tensors: tensors, metadata: [:])
    }
    let (m, report) = try EncoderModel.load(directory: dir, numLabels: 2, seed: 9)
    XCTAssertEqual(report.initialized, ["classifier"])
    XCTAssertEqual(report.message, "initialised classifier (the checkpoint's classifier.weight is [3, 8], this task's head [2, 8]): N(0, 0.02), seed 9")
    XCTAssertEqual(Array(UnsafeBufferPointer(start: m.pointer(m.layout.slot(named: "classifier.bias")!), count: 2)), [0, 0])
    let word = m.layout.slot(named: "embeddings.word_embeddings.weight")!
    XCTAssertEqual(m.pointer(word)[7], saved.pointer(word)[7])
  }
}

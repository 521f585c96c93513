import Foundation
import XCTest
import PETLDistributed
@testable import PETLKernels
@testable import PETLModel
@testable import PETLTraining
import PETLSupport

/// Paths and builders shared by the tests.
enum TestSupport {
  /// The package root (Tests/PETLTests/ -> ../..).
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  static let fixtures = root.appendingPathComponent("Tests/Fixtures")
  static let modelDir = root.appendingPathComponent("models/all-MiniLM-L6-v2")
  static let glueDir = root.deletingLastPathComponent().appendingPathComponent("shared/data/glue")

  /// Fails the test (not skips) when setup has not been run.
  static func requireModel(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    guard FileManager.default.fileExists(atPath: modelDir.appendingPathComponent("model.safetensors").path) else {
      XCTFail("models/all-MiniLM-L6-v2 missing: run launch/setup", file: file, line: line)
      throw PETLError("model missing")
    }
    return modelDir
  }

  /// A padded batch of a PyTorch fixture (`<prefix>input_ids`, `attention_mask`, optional
  /// `token_type_ids`, `labels`), packed: each row keeps the tokens its attention mask covers.
  static func packedBatch(_ st: SafeTensors, prefix: String = "", labels: Bool = true) throws -> Batch {
    let ids = try st.integers(prefix + "input_ids"), mask = try st.integers(prefix + "attention_mask")
    let types = st.info(prefix + "token_type_ids") != nil ? try st.integers(prefix + "token_type_ids")
      : [Int64](repeating: 0, count: ids.count)
    let shape = st.info(prefix + "input_ids")!.shape
    let (B, T) = (shape[0], shape[1])
    var seqs: [(ids: [Int32], types: [Int32])] = []
    for b in 0..<B {
      let n = (0..<T).filter { mask[b * T + $0] == 1 }.count
      seqs.append(((0..<n).map { Int32(ids[b * T + $0]) }, (0..<n).map { Int32(types[b * T + $0]) }))
    }
    let y = labels ? try st.integers("labels").map(Float.init) : [Float](repeating: 0, count: B)
    return Batch(sequences: seqs, labels: y, exampleIds: (0..<UInt64(B)).map { $0 })
  }

  static let tinyDims = ModelDims(vocabSize: 40, hidden: 32, layers: 3, heads: 2, intermediate: 48,
                                  maxPositions: 16, typeVocab: 2, numLabels: 3, layerNormEps: 1e-5)

  /// `tinyDims` in another family: RoBERTa with its padding id 1 (positions from 2, so 2 more
  /// rows), ELECTRA with embeddings narrower than the hidden width, DistilBERT without token types.
  static func tinyDims(_ family: EncoderFamily) -> ModelDims {
    var d = tinyDims
    d.family = family
    switch family {
    case .bert: break
    case .roberta: d.padTokenId = 1; d.maxPositions += 2
    case .electra: d.embedding = 24
    case .distilbert: d.typeVocab = 0
    }
    return d
  }

  /// A tiny model with all parameters random and large enough that every gradient is well above
  /// float noise (LayerNorm gains and biases perturbed too).
  static func tinyModel(dims: ModelDims = tinyDims, seed: UInt64 = 7) -> EncoderModel {
    let m = EncoderModel(dims: dims, hiddenDropout: 0.1, attentionDropout: 0.1)
    var rng = SeededGenerator(seed: seed)
    for s in m.layout.slots {
      let p = m.pointer(s)
      for i in 0..<s.count {
        switch s.role {
        case .gamma: p[i] = 1 + 0.2 * rng.normal()
        case .weight, .table: p[i] = 0.25 * rng.normal()
        case .bias, .beta: p[i] = 0.1 * rng.normal()
        case .loraA, .loraB: p[i] = 0.25 * rng.normal()
        }
      }
    }
    return m
  }

  static func tinyBatch(dims: ModelDims = tinyDims, lengths: [Int] = [5, 7, 3], seed: UInt64 = 3) -> Batch {
    var rng = SeededGenerator(seed: seed)
    var seqs: [(ids: [Int32], types: [Int32])] = []
    var labels: [Float] = []
    for (i, n) in lengths.enumerated() {
      let ids = (0..<n).map { _ in Int32(rng.next() % UInt64(dims.vocabSize)) }
      let types = (0..<n).map { $0 < n / 2 || dims.typeVocab < 2 ? Int32(0) : Int32(1) }
      seqs.append((ids, types))
      labels.append(dims.numLabels == 1 ? Float(i) * 0.7 - 0.3 : Float(i % dims.numLabels))
    }
    return Batch(sequences: seqs, labels: labels, exampleIds: (0..<UInt64(lengths.count)).map { $0 + 100 })
  }

  /// `swift-petl`, built by `swift test` next to the test bundle (on Linux an executable, `.xctest`).
  static var binary: String {
    let bundle = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    return bundle.deletingLastPathComponent().appendingPathComponent("swift-petl").path
  }

  /// Runs `argv` (through PATH) under `timeout` (a hang fails the test instead of hanging CI) with this
  /// process's environment minus every `OMPI_*`/`PMIX_*` variable (the singleton MPI of this test
  /// process set them; a child mpirun that inherits them fails silently) and with root allowed;
  /// returns the exit status and stdout+stderr.
  static func launch(_ argv: [String], extra: [String: String] = [:], timeout seconds: Int = 600,
                     file: StaticString = #filePath, line: UInt = #line) throws -> (status: Int32, output: String) {
    guard FileManager.default.isExecutableFile(atPath: binary) else {
      XCTFail("\(binary) is missing: build with `swift build` (swift test builds it)")
      return (-1, "")
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["timeout", "-k", "10", String(seconds)] + argv
    p.environment = childEnvironment(extra)
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try StopSignal.unblockedForChildren { try p.run() }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let output = String(decoding: data, as: UTF8.self)
    if p.terminationStatus == 124 || p.terminationStatus == 137 {
      XCTFail("timed out after \(seconds) s: \(argv.joined(separator: " "))\n\(output)", file: file, line: line)
    }
    return (p.terminationStatus, output)
  }

  /// The environment for a child process: ours without `OMPI_*`/`PMIX_*`, root allowed, plus `extra`.
  static func childEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env.merge(extra) { $1 }
    return env
  }
}

extension XCTestCase {
  /// Fails the test (not skips) unless setup fetched the model and the embedded data.
  func requireModelAndData(file: StaticString = #filePath, line: UInt = #line) throws {
    _ = try TestSupport.requireModel(file: file, line: line)
    guard FileManager.default.fileExists(atPath: TestSupport.root.appendingPathComponent("data/rt-vader").path) else {
      XCTFail("data/rt-vader missing: run launch/setup", file: file, line: line); throw PETLError("data missing")
    }
  }

  /// A new folder (a user task's, say) holding `files` (name -> UTF-8 text), removed when the test ends.
  func folder(_ files: [String: String], name: String = "my-task") throws -> URL {
    let parent = try temporaryFolder("petl-usertask")
    let dir = parent.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (file, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent(file)) }
    return dir
  }

  /// A new folder removed when the test ends.
  func temporaryFolder(_ prefix: String) throws -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(at: d) }
    return d
  }

  /// After a resume: the journal still starts with `before`, byte for byte, and holds `cells` lines,
  /// each cell once.
  func assertResumedJournal(_ journal: URL, keeps before: Data, cells: Int, file: StaticString = #filePath, line: UInt = #line) throws {
    let after = try Data(contentsOf: journal)
    XCTAssertEqual(after.prefix(before.count), before, "earlier lines untouched", file: file, line: line)
    let hashes = String(decoding: after, as: UTF8.self).split(separator: "\n").map {
      (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["spec_hash"] as? String ?? "?"
    }
    XCTAssertEqual(hashes.count, cells, file: file, line: line)
    XCTAssertEqual(Set(hashes).count, cells, "each cell once", file: file, line: line)
  }

  // MARK: errors

  /// `body` throws a `PETLError` whose message is exactly `expected`.
  func assertError(_ expected: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
      XCTAssertEqual((error as? PETLError)?.message, expected, file: file, line: line)
    }
  }

  /// A run of the binary that failed with one error: a non-zero exit that is not a signal (a trap),
  /// and exactly one `Error: ` line, containing every text; other output (progress, the files read)
  /// may surround it.
  func assertOneErrorLine(_ run: (status: Int32, output: String), _ texts: String...,
                          file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertNotEqual(run.status, 0, run.output, file: file, line: line)
    XCTAssertLessThan(run.status, 128, "exited by a signal (trap?): \(run.output)", file: file, line: line)
    let errors = run.output.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
    XCTAssertEqual(errors.count, 1, run.output, file: file, line: line)
    for t in texts { XCTAssertTrue(run.output.contains(t), "expected '\(t)' in: \(run.output)", file: file, line: line) }
  }

  /// As `assertOneErrorLine`, and the `Error: ` line is all the run printed (a refusal before any work).
  func assertOnlyAnErrorLine(_ run: (status: Int32, output: String), _ texts: String...,
                             file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertNotEqual(run.status, 0, run.output, file: file, line: line)
    XCTAssertLessThan(run.status, 128, "exited by a signal (trap?): \(run.output)", file: file, line: line)
    let lines = run.output.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    XCTAssertEqual(lines.count, 1, run.output, file: file, line: line)
    XCTAssertTrue(lines.first?.hasPrefix("Error: ") == true, run.output, file: file, line: line)
    for t in texts { XCTAssertTrue(run.output.contains(t), "expected '\(t)' in: \(run.output)", file: file, line: line) }
  }
}

/// Tests write trainable sets as the command line does, `["query", "ln_out"]`; a misspelt name traps
/// the test (the parser's errors are tested on their own).
extension TrainableModule: ExpressibleByStringLiteral {
  public init(stringLiteral value: String) { self.init(rawValue: value)! }
}

extension TestSupport {
  /// The layout of a model with `layers` encoder layers of MiniLM's size (for the cost model).
  static func miniLMLayout(layers: Int = 6) -> ParameterLayout {
    ParameterLayout(dims: ModelDims(vocabSize: 30522, hidden: 384, layers: layers, heads: 12, intermediate: 1536,
                                    maxPositions: 512, typeVocab: 2, numLabels: 2))
  }
}

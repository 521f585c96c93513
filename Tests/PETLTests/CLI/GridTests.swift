import Foundation
import XCTest
import PETLDistributed
@testable import PETLModel

/// The grid as users launch it: the built binary under a real `mpirun`, on the real model and the
/// embedded default task, with cells small enough for a debug build (few examples, short sequences).
final class GridTests: XCTestCase {
  static let data = TestSupport.root.appendingPathComponent("data")
  /// Flags that make every cell tiny; one BLAS thread so every run computes bit-identically.
  static let tiny = ["--max-train", "24", "--max-eval", "16", "--max-length", "24", "--epochs", "1",
                     "--batch-size", "8", "--no-prefix-cache", "--lrs", "5e-3"]
  static let env = ["OPENBLAS_NUM_THREADS": "1"]

  func grid(_ ranks: Int, _ args: [String], results: URL) throws -> (status: Int32, output: String) {
    var argv = ["mpirun", "-n", String(ranks)]
    if ranks > 2 { argv.append("--oversubscribe") }
    argv += [TestSupport.binary, "grid", "--model", TestSupport.modelDir.path, "--data-dir", Self.data.path,
             "--tasks", "rt-vader", "--results", results.path] + Self.tiny + args
    return try TestSupport.launch(argv, extra: Self.env, timeout: 300)
  }

  func journalLines(_ results: URL) throws -> [[String: Any]] {
    let text = try String(contentsOf: results.appendingPathComponent("journal.jsonl"), encoding: .utf8)
    return text.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
  }

  /// Four ranks, four layer-wise cells: each cell is journaled exactly once, and its dev metric is
  /// exactly what `train` computes for the same cell alone.
  func testFourRanksRunEveryCellOnceWithTheSameMetricsAsTrainAlone() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-grid")
    let run = try grid(4, ["--modules", "layernorm,ln_out", "--layers", "4,5"], results: out)
    XCTAssertEqual(run.status, 0, run.output)
    let lines = try journalLines(out)
    XCTAssertEqual(lines.count, 4, run.output)
    XCTAssertEqual(Set(lines.map { $0["spec_hash"] as! String }).count, 4)
    for line in lines.prefix(2) {
      let spec = line["spec"] as! [String: Any]
      let modules = (spec["modules"] as! [String]).joined(separator: ",")
      let layer = (spec["layers"] as! [Int])[0]
      let json = out.appendingPathComponent("alone-\(modules)-\(layer).json")
      let alone = try TestSupport.launch([TestSupport.binary, "train", "--model", TestSupport.modelDir.path,
                                          "--data-dir", Self.data.path, "--task", "rt-vader", "--modules", modules,
                                          "--layers", String(layer), "--output", json.path] + Self.tiny, extra: Self.env)
      XCTAssertEqual(alone.status, 0, alone.output)
      let result = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as! [String: Any]
      XCTAssertEqual(result["spec_hash"] as? String, line["spec_hash"] as? String, "train and grid describe the same cell")
      XCTAssertEqual(result["dev"] as! [String: Double], line["dev"] as! [String: Double], "\(modules)@\(layer)")
    }
  }

  /// `--dp 2` trains a cell to the same parameters as one rank with the same global batch, and the
  /// all-reduce carries exactly 4 bytes per trainable parameter.
  func testDataParallelMatchesOneRank() throws {
    try requireModelAndData()
    let one = try temporaryFolder("petl-grid"), two = try temporaryFolder("petl-grid")
    let args = ["--modules", "layernorm", "--layers", "all", "--save-adapters"]
    let r1 = try grid(1, args, results: one)
    XCTAssertEqual(r1.status, 0, r1.output)
    let r2 = try grid(2, args + ["--dp", "2"], results: two)
    XCTAssertEqual(r2.status, 0, r2.output)
    let l1 = try journalLines(one)[0], l2 = try journalLines(two)[0]
    XCTAssertEqual(l1["spec_hash"] as? String, l2["spec_hash"] as? String)
    XCTAssertEqual(l2["ranks"] as? Int, 2)
    XCTAssertEqual(l2["allreduce_bytes_per_step"] as? Int, 4 * (l2["trainable_parameters"] as! Int))
    let hash = l1["spec_hash"] as! String
    let a = try SafeTensors.open(one.appendingPathComponent("adapters/\(hash).safetensors"))
    let b = try SafeTensors.open(two.appendingPathComponent("adapters/\(hash).safetensors"))
    XCTAssertEqual(a.names, b.names)
    XCTAssertEqual(a.names.count, 26, "12 LayerNorms x (weight, bias) + classifier weight, bias")
    for name in a.names {
      let x = try a.floats(name), y = try b.floats(name)
      // Summation order differs; everything else is the same. AdamW moves every parameter by about
      // its learning rate per step (5e-3 for LayerNorms, less in warm-up) whatever the gradient's
      // size, so a wrong reduction shows near 1e-3. Rounding shows only where a gradient is near
      // zero and Adam's m/√v amplifies it: measured up to 5e-6; 5e-5 (1% of the rate) allowed.
      var worst: Float = 0
      for i in x.indices { worst = max(worst, abs(x[i] - y[i]) - 1e-4 * abs(x[i])) }
      XCTAssertLessThan(worst, 5e-5, name)
    }
  }

  /// The learning-rate choice under `--dp 2`: every rank of the group scores the candidates on the
  /// same all-reduced dev outputs, so the group makes one rank's choice, candidate for candidate.
  func testDataParallelHalvingChoosesAsOneRank() throws {
    try requireModelAndData()
    let one = try temporaryFolder("petl-grid"), two = try temporaryFolder("petl-grid")
    // 4 epochs of 3 steps: every candidate to step 1 (a twelfth), two to step 2 (a fifth), one to 12.
    let args = ["--modules", "layernorm", "--layers", "all", "--epochs", "4",
                "--lrs", "1e-4,5e-3,5e-2", "--lr-selection", "halving"]
    let r1 = try grid(1, args, results: one)
    XCTAssertEqual(r1.status, 0, r1.output)
    let r2 = try grid(2, args + ["--dp", "2"], results: two)
    XCTAssertEqual(r2.status, 0, r2.output)
    let l1 = try journalLines(one), l2 = try journalLines(two)
    XCTAssertEqual(l1.count, 1); XCTAssertEqual(l2.count, 1)
    XCTAssertEqual(l2[0]["ranks"] as? Int, 2)
    let s1 = try XCTUnwrap(l1[0]["lr_selection"] as? [String: Any]), s2 = try XCTUnwrap(l2[0]["lr_selection"] as? [String: Any])
    XCTAssertEqual(s1["chosen"] as? Double, s2["chosen"] as? Double)
    let c1 = try XCTUnwrap(s1["candidates"] as? [[String: Any]]), c2 = try XCTUnwrap(s2["candidates"] as? [[String: Any]])
    // The last rung is step 2, or later while it cannot decide (its leader predicts one class, or no
    // candidate is above chance): 4, then 6, half the cell.
    let rung = try XCTUnwrap(s1["rung_steps"] as? Int)
    XCTAssertTrue([2, 4, 6].contains(rung), "\(rung)")
    XCTAssertEqual(c1.compactMap { $0["steps"] as? Int }.sorted(), [1, rung, rung])
    XCTAssertEqual(c1.compactMap { $0["steps"] as? Int }, c2.compactMap { $0["steps"] as? Int })
    for (a, b) in zip(c1, c2) {
      let la = try XCTUnwrap((a["dev"] as? [String: Any])?["loss"] as? Double)
      let lb = try XCTUnwrap((b["dev"] as? [String: Any])?["loss"] as? Double)
      // Only the summation order of the gradient all-reduce differs: a loss of ~0.69 moves by rounding.
      XCTAssertEqual(la, lb, accuracy: 1e-4, "\(a["learning_rate"] ?? "?")")
    }
  }

  /// Halving over three seeds: seed 1's cell searches; seeds 2 and 3 wait for it (two ranks: one
  /// group is parked until seed 1's record exists) and train at the rate it chose, exactly as a plain
  /// cell at that rate and seed.
  func testLaterSeedsTrainAtTheFirstSeedsChoice() throws {
    try requireModelAndData()
    let results = try temporaryFolder("petl-grid"), task = try Self.separableTask(in: results)
    let args = ["--tasks", task.path, "--modules", "layernorm", "--layers", "all", "--epochs", "4", "--seeds", "1,2,3",
                "--lrs", "1e-3,1e-2,5e-2", "--lr-selection", "halving", "--max-train", "48"]
    let r = try grid(2, args, results: results)
    XCTAssertEqual(r.status, 0, r.output)
    let lines = try journalLines(results)
    XCTAssertEqual(lines.count, 3)
    func seed(_ l: [String: Any]) -> Int { ((l["spec"] as? [String: Any])?["options"] as? [String: Any])?["seed"] as? Int ?? -1 }
    let bySeed = Dictionary(uniqueKeysWithValues: lines.map { (seed($0), $0) })
    XCTAssertEqual(((bySeed[1]?["collapse"] as? [String: Any])?["reason"]) as? String, nil, "seed 1 trained")
    let first = try XCTUnwrap(bySeed[1]?["lr_selection"] as? [String: Any])
    let chosen = try XCTUnwrap(first["chosen"] as? Double)
    XCTAssertNil(first["reused_from_seed"])
    XCTAssertEqual((first["candidates"] as? [Any])?.count, 3)
    for s in [2, 3] {
      let sel = try XCTUnwrap(bySeed[s]?["lr_selection"] as? [String: Any], "seed \(s)")
      XCTAssertEqual(sel["reused_from_seed"] as? Int, 1)
      XCTAssertEqual(sel["chosen"] as? Double, chosen)
      XCTAssertEqual((sel["candidates"] as? [Any])?.count, 0, "seed \(s) did not search")
    }
    // Seed 2's cell is the plain cell at the chosen rate.
    let alone = try TestSupport.launch([TestSupport.binary, "train", "--model", TestSupport.modelDir.path,
                                        "--task", task.path, "--modules", "layernorm",
                                        "--seed", "2", "--lr", String(chosen)] + Self.tiny.dropLast(2) + ["--epochs", "4", "--max-train", "48"],
                                       extra: Self.env, timeout: 300)
    XCTAssertEqual(alone.status, 0, alone.output)
    let dev = try XCTUnwrap(bySeed[2]?["dev"] as? [String: Any])["accuracy"] as? Double
    XCTAssertTrue(alone.output.contains("dev: accuracy=\(String(format: "%.4f", dev ?? -1))"), alone.output)
  }

  /// A user task a head learns in a few steps: positive words against negative ones.
  static func separableTask(in folder: URL) throws -> URL {
    let task = folder.appendingPathComponent("separable")
    try FileManager.default.createDirectory(at: task, withIntermediateDirectories: true)
    let good = ["wonderful", "great", "superb", "delightful", "excellent", "lovely"]
    let bad = ["terrible", "awful", "dreadful", "horrible", "boring", "miserable"]
    func rows(_ n: Int, offset: Int) -> String {
      (0..<n).map { i -> String in
        let pos = i % 2 == 0, w = (pos ? good : bad)[(i / 2 + offset) % 6]
        return #"{"text": "a \#(w) and \#(w) film", "label": "\#(pos ? "pos" : "neg")"}"#
      }.joined(separator: "\n")
    }
    try rows(48, offset: 0).write(to: task.appendingPathComponent("train.jsonl"), atomically: true, encoding: .utf8)
    try rows(16, offset: 3).write(to: task.appendingPathComponent("dev.jsonl"), atomically: true, encoding: .utf8)
    return task
  }

  /// A task whose training labels are all one class: every run predicts that class on dev, is
  /// recorded as collapsed with its evidence, restarts from a fresh seed, and stays collapsed.
  func testACollapsedRunRestartsAndIsRecordedAsCollapsed() throws {
    try requireModelAndData()
    let folder = try temporaryFolder("petl-collapse"), task = try Self.oneClassTask(in: folder)
    let out = folder.appendingPathComponent("r.json")
    let r = try TestSupport.launch([TestSupport.binary, "train", "--model", TestSupport.modelDir.path, "--task", task.path,
                                    "--modules", "classifier", "--lr", "1e-2", "--epochs", "2", "--batch-size", "8",
                                    "--max-length", "16", "--restarts", "1", "--output", out.path], extra: Self.env, timeout: 300)
    XCTAssertEqual(r.status, 0, r.output)
    XCTAssertTrue(r.output.contains("restart 1: seed 1 collapsed (100.0% of dev predictions in one class (gold majority 50.0%))"), r.output)
    XCTAssertTrue(r.output.contains("status: collapsed: 100.0% of dev predictions in one class"), r.output)
    let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any])
    let result = try XCTUnwrap(json["result"] as? [String: Any])
    XCTAssertEqual((result["collapse"] as? [String: Any])?["predicted_share"] as? Double, 1)
    XCTAssertEqual((result["restarts"] as? [[String: Any]])?.first?["seed"] as? Int, 1)
    XCTAssertEqual(result["trained_seed"] as? Int, 1_000_001)
  }

  /// Training labels all "pos", dev half "pos" and half "neg": every run predicts one class on dev.
  static func oneClassTask(in folder: URL) throws -> URL {
    let task = folder.appendingPathComponent("one-class")
    try FileManager.default.createDirectory(at: task, withIntermediateDirectories: true)
    let words = ["fine", "dull", "great", "awful", "bright", "grim", "lively", "flat"]
    func row(_ i: Int, _ label: String) -> String { #"{"text": "a \#(words[i % 8]) film number \#(i)", "label": "\#(label)"}"# }
    try (0..<24).map { row($0, "pos") }.joined(separator: "\n").write(to: task.appendingPathComponent("train.jsonl"), atomically: true, encoding: .utf8)
    try (0..<16).map { row($0, $0 % 2 == 0 ? "pos" : "neg") }.joined(separator: "\n").write(to: task.appendingPathComponent("dev.jsonl"), atomically: true, encoding: .utf8)
    try #"{"labels": ["neg", "pos"]}"#.write(to: task.appendingPathComponent("task.json"), atomically: true, encoding: .utf8)
    return task
  }

  /// The collapse check and its restart inside a data-parallel group: both ranks decide from the
  /// all-reduced outputs and losses, restart together, and the leader journals one record whose
  /// evidence matches the one-rank run's; the report lists the cell and scores nothing for it.
  func testACollapsedRunRestartsAlikeOnEveryRankOfAGroup() throws {
    try requireModelAndData()
    let one = try temporaryFolder("petl-collapse"), two = try temporaryFolder("petl-collapse")
    let task = try Self.oneClassTask(in: one)
    let args = ["--tasks", task.path, "--modules", "classifier", "--lrs", "1e-2", "--epochs", "2",
                "--max-length", "16", "--restarts", "1"]
    let r1 = try grid(1, args, results: one.appendingPathComponent("results"))
    XCTAssertEqual(r1.status, 0, r1.output)
    let r2 = try grid(2, args + ["--dp", "2"], results: two)
    XCTAssertEqual(r2.status, 0, r2.output)
    let l1 = try journalLines(one.appendingPathComponent("results")), l2 = try journalLines(two)
    XCTAssertEqual(l1.count, 1); XCTAssertEqual(l2.count, 1)
    XCTAssertEqual(l2[0]["ranks"] as? Int, 2)
    for l in [l1[0], l2[0]] {
      XCTAssertEqual((l["collapse"] as? [String: Any])?["predicted_share"] as? Double, 1, "\(l)")
      XCTAssertEqual((l["restarts"] as? [[String: Any]])?.map { $0["seed"] as? Int }, [1], "\(l)")
      XCTAssertEqual(l["trained_seed"] as? Int, 1_000_001)
    }
    let report = try String(contentsOf: two.appendingPathComponent("report/report.md"), encoding: .utf8)
    XCTAssertTrue(report.contains("one-class classifier@all seed1 lr1e-02: collapsed after 1 restart(s)"), report)
    XCTAssertTrue(report.contains("1 of 1 checked cells collapsed"), report)
  }

  /// `--dp 2` against one rank with plain SGD and no clipping, so the update is linear in the
  /// gradient and a uniform scale error in the all-reduce or the global-batch divisor (x2, /2) shows
  /// in the trained parameters; AdamW and clipping (`testDataParallelMatchesOneRank`) normalise it away.
  /// Compared: the UPDATE (adapter minus the parameter before training), not the parameter.
  func testDataParallelSGDUpdateMatchesOneRank() throws {
    try requireModelAndData()
    let one = try temporaryFolder("petl-grid"), two = try temporaryFolder("petl-grid"), doubled = try temporaryFolder("petl-grid")
    let sgd = ["--modules", "layernorm", "--layers", "all", "--save-adapters", "--optimizer", "sgd",
               "--max-grad-norm", "0", "--dropout", "0", "--warmup-ratio", "0"]
    let r1 = try grid(1, sgd + ["--lrs", "1"], results: one)
    XCTAssertEqual(r1.status, 0, r1.output)
    let r2 = try grid(2, sgd + ["--lrs", "1", "--dp", "2"], results: two)
    XCTAssertEqual(r2.status, 0, r2.output)
    // With SGD and no clipping a gradient scaled x2 is, bit for bit, the learning rate x2
    // (lr * 2g == 2lr * g exactly in floating point): this run is what a x2 bug would train.
    let r3 = try grid(1, sgd + ["--lrs", "2"], results: doubled)
    XCTAssertEqual(r3.status, 0, r3.output)
    let l1 = try journalLines(one)[0], l2 = try journalLines(two)[0], l3 = try journalLines(doubled)[0]
    XCTAssertEqual(l1["spec_hash"] as? String, l2["spec_hash"] as? String)
    XCTAssertEqual(l1["status"] as? String, "ok", r1.output)
    XCTAssertEqual(l2["ranks"] as? Int, 2)
    XCTAssertEqual(l1["steps"] as? Int, 3, "24 sentences in batches of 8")
    XCTAssertEqual(l2["steps"] as? Int, 3)
    // The mean training loss is the sum of the ranks' shares of each global batch's mean.
    let loss1 = ((l1["epochs"] as! [[String: Any]])[0]["train_loss"] as! Double)
    let loss2 = ((l2["epochs"] as! [[String: Any]])[0]["train_loss"] as! Double)
    XCTAssertEqual(loss2, loss1, accuracy: 1e-5 * abs(loss1), "train loss, --dp 2 against one rank")

    // Parameters before training: the LayerNorms from the checkpoint file itself; the head (not in
    // the checkpoint) as the cell initialises it, from its seed.
    let seed = UInt64(((l1["spec"] as! [String: Any])["options"] as! [String: Any])["seed"] as! Int)
    let checkpoint = try SafeTensors.open(TestSupport.modelDir.appendingPathComponent("model.safetensors"))
    let (initial, _) = try EncoderModel.load(directory: TestSupport.modelDir, numLabels: 2, seed: seed)
    func adapter(_ folder: URL, _ line: [String: Any]) throws -> SafeTensors {
      try SafeTensors.open(folder.appendingPathComponent("adapters/\(line["spec_hash"] as! String).safetensors"))
    }
    let a = try adapter(one, l1), b = try adapter(two, l2), c = try adapter(doubled, l3)
    XCTAssertEqual(a.names, b.names)
    XCTAssertEqual(a.names, c.names)
    XCTAssertEqual(a.names.count, 26, "12 LayerNorms x (weight, bias) + classifier weight, bias")
    var leastMargin = Float.infinity, closest: Float = 0
    for name in a.names {
      let x = try a.floats(name), y = try b.floats(name), z = try c.floats(name)
      let before: [Float]
      if checkpoint.names.contains(name) {
        before = try checkpoint.floats(name)   // adapter and checkpoint both use the bert.-less HF names
      } else {
        XCTAssertTrue(name.hasPrefix("classifier."), name)
        let slot = try XCTUnwrap(initial.layout.slot(named: name), name)
        before = Array(UnsafeBufferPointer(start: initial.pointer(slot), count: slot.count))
      }
      XCTAssertEqual(before.count, x.count, name)
      var update: Float = 0                          // max |Δ| of one rank
      for i in x.indices { update = max(update, abs(x[i] - before[i])) }
      // Tolerance: 1e-3 of the update's size, plus a floor of 4 ulps of the parameter (Δ is a
      // difference of stored floats: different summation orders leave up to an ulp or two in the
      // parameter, measured <= 1.2e-7, i.e. 3e-5 of the smallest update here, whatever the update).
      var worst: Float = 0, floor: Float = 0, scaled: Float = 0
      for i in x.indices {
        let ulps = 4 * max(abs(x[i]), abs(before[i])).ulp
        floor = max(floor, ulps)
        let tolerance = 1e-3 * update + ulps
        let d1 = x[i] - before[i], d2 = y[i] - before[i], d3 = z[i] - before[i]
        worst = max(worst, abs(d2 - d1) - tolerance)
        closest = max(closest, abs(d2 - d1) / tolerance)
        scaled = max(scaled, abs(d3 - d1) / tolerance)
      }
      XCTAssertLessThanOrEqual(worst, 0, "\(name): --dp 2 update differs from one rank's by more than 1e-3 of max|Δ| = \(update)")
      // The updates are not tiny: at lr 1 the smallest tensor's max|Δ| is ~2e-3 (the layer-0
      // attention LayerNorm gain), >= 1e3 x the floor (<= 4.8e-7 for |w| < 2). So the tolerance is
      // at most 2e-3 x max|Δ|, while a x2 (or /2) scale error in the reduced gradient gives
      // |Δ_dp2 - Δ_dp1| ~ max|Δ| (max|Δ|/2 for /2): some 500x (250x) over the tolerance.
      XCTAssertGreaterThan(update, 1e3 * floor, "\(name): update \(update) too small to expose a scale error")
      XCTAssertGreaterThan(update, 1e-3, "\(name): update \(update) too small to expose a scale error")
      // And measured: the x2 run misses this tolerance by orders of magnitude in every tensor.
      XCTAssertGreaterThan(scaled, 100, "\(name): a x2 gradient must fail this comparison by far")
      leastMargin = min(leastMargin, scaled)
    }
    print("dp SGD test: --dp 2 uses at most \(closest) of the tolerance; a x2 gradient exceeds it by at least \(leastMargin)x")
  }

  /// A grid killed with SIGKILL part-way resumes: every cell ends up in the journal exactly once and the
  /// lines written before the kill are untouched.
  func testKilledGridResumes() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-grid")
    let args = ["--modules", "ln_out", "--layers", "each"]
    var argv = [TestSupport.binary, "grid", "--model", TestSupport.modelDir.path, "--data-dir", Self.data.path,
                "--tasks", "rt-vader", "--results", out.path] + Self.tiny + args
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_") && !$0.key.hasPrefix("PMIX_") }
    env["OPENBLAS_NUM_THREADS"] = "1"
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv.removeFirst())
    p.arguments = argv
    p.environment = env
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try StopSignal.unblockedForChildren { try p.run() }
    let journal = out.appendingPathComponent("journal.jsonl")
    let deadline = Date().addingTimeInterval(300)
    while Date() < deadline {
      if let t = try? String(contentsOf: journal, encoding: .utf8), t.split(separator: "\n").count >= 2 { break }
      usleep(20_000)
    }
    kill(p.processIdentifier, SIGKILL)
    p.waitUntilExit()
    let before = try Data(contentsOf: journal)
    let linesBefore = String(decoding: before, as: UTF8.self).split(separator: "\n").count
    XCTAssertGreaterThanOrEqual(linesBefore, 2)
    XCTAssertLessThan(linesBefore, 6, "killed before the end")
    let rerun = try grid(1, args, results: out)
    XCTAssertEqual(rerun.status, 0, rerun.output)
    try assertResumedJournal(journal, keeps: before, cells: 6)
  }

  /// Bad input fails with one clear line and leaves the journal as it was.
  func testBadInputLeavesTheJournalUntouched() throws {
    try requireModelAndData()
    let out = try temporaryFolder("petl-grid")
    let journal = out.appendingPathComponent("journal.jsonl")
    let good = try grid(1, ["--modules", "classifier"], results: out)
    XCTAssertEqual(good.status, 0, good.output)
    let bytes = try Data(contentsOf: journal)
    let unknown = try grid(1, ["--modules", "quary"], results: out)
    XCTAssertNotEqual(unknown.status, 0)
    XCTAssertTrue(unknown.output.contains("unknown trainable set 'quary'"), unknown.output)
    let empty = try grid(1, ["--modules", "query", "--layers", "7"], results: out)
    XCTAssertNotEqual(empty.status, 0)
    XCTAssertTrue(empty.output.contains("layer 7 does not exist"), empty.output)
    XCTAssertEqual(try Data(contentsOf: journal), bytes)
    // a corrupted line in the middle: refuse to touch the journal
    var corrupt = bytes
    corrupt.append(contentsOf: Array("{not json\n".utf8))
    corrupt.append(bytes)
    try corrupt.write(to: journal)
    let refused = try grid(1, ["--modules", "classifier,ln_out"], results: out)
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.output.contains("journal.jsonl:2"), refused.output)
    XCTAssertEqual(try Data(contentsOf: journal), corrupt)
  }
}

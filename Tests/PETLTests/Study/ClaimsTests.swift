import Foundation
import XCTest
@testable import PETLData
@testable import PETLTraining
@testable import PETLKernels
@testable import PETLStudy

/// The report's statistics and the paper's claims, on a synthetic journal whose answers are known.
final class ClaimsTests: XCTestCase {
  func testBootstrapIntervalOfAccuracy() throws {
    let task = try TaskDescriptor.named("rte")
    // 400 of 500 right: accuracy 0.8, binomial SE 0.0179, so the 95% interval is about ±0.035.
    let labels = (0..<500).map { Float($0 % 2) }
    let outputs = labels.enumerated().map { i, y -> [Float] in
      let right = i % 5 != 0
      return (y == 1) == right ? [0, 1] : [1, 0]
    }
    let i = try XCTUnwrap(Bootstrap.interval(task: task, outputs: outputs, labels: labels, seed: 1))
    XCTAssertLessThan(i[0], 0.8); XCTAssertGreaterThan(i[1], 0.8)
    XCTAssertEqual(i[1] - i[0], 2 * 1.96 * (0.8 * 0.2 / 500).squareRoot(), accuracy: 0.015)
    XCTAssertEqual(Bootstrap.interval(task: task, outputs: outputs, labels: labels, seed: 1), i, "seeded")
  }

  func testSpearman() {
    XCTAssertEqual(ReportFindings.spearman([(1, 10), (2, 20), (3, 30), (4, 35)]), 1, accuracy: 1e-12)
    XCTAssertEqual(ReportFindings.spearman([(1, 4), (2, 3), (3, 2), (4, 1)]), -1, accuracy: 1e-12)
    XCTAssertEqual(ReportFindings.spearman([(1, 1), (2, 1), (3, 2), (4, 2)]), 0.894, accuracy: 1e-3, "ties get average ranks")
  }

  static func record(_ modules: [TrainableModule], _ layers: LayerSelection, score: Double, interval: [Double]? = nil,
                     trainable: Int, meanAbs: Double? = nil, randomCount: Int? = nil,
                     selection: LearningRateSelection? = nil) -> JournalRecord {
    var o = TrainOptions()
    o.seed = 1
    if selection != nil { o.learningRate = 0; o.learningRateCandidates = selection!.candidates.map(\.learningRate) }
    let spec = CellSpec(task: "rt-vader", modules: modules, layers: layers, randomCount: randomCount, model: "m", options: o)
    var r = CellResult(status: .ok, dev: ["accuracy": score], trainableParameters: trainable, totalParameters: 1000, steps: 10)
    r.devInterval = interval
    r.pretrainedMeanAbs = meanAbs
    r.moved = meanAbs.map { 0.01 / $0 }
    r.selection = selection
    return JournalRecord(spec: spec, result: r, worker: 0)
  }

  /// A record of `seed` whose dev predictions score `accuracy` on `n` balanced examples: the examples
  /// it gets wrong are spread by a seeded permutation, so seeds differ in which ones they miss.
  static func seeded(_ modules: [TrainableModule], _ layers: LayerSelection, seed: UInt64, accuracy: Double, n: Int = 400,
                     trainable: Int, meanAbs: Double? = nil, randomCount: Int? = nil,
                     selection: LearningRateSelection? = nil) -> JournalRecord {
    var rec = record(modules, layers, score: accuracy, trainable: trainable, meanAbs: meanAbs, randomCount: randomCount, selection: selection)
    rec.spec.options.seed = seed
    if selection != nil && seed != 1 { rec.spec.options.rateFromSeed = 1 }
    rec.specHash = rec.spec.hash
    let gold = (0..<n).map { Float($0 % 2) }
    var rng = SeededGenerator(seed: seed &* 7919 &+ UInt64(modules.count))
    let order = (0..<n).shuffled(using: &rng)
    let wrong = Set(order.prefix(n - Int((accuracy * Double(n)).rounded())))
    let outputs = gold.enumerated().map { i, y -> [Float] in (y == 1) != wrong.contains(i) ? [0, 1] : [1, 0] }
    rec.result.devPredictions = DevPredictions(task: try! TaskDescriptor.named("rte"), outputs: outputs, labels: gold)
    rec.result.collapse = Collapse(predictedShare: 0.5, goldShare: 0.5)
    return rec
  }

  /// Three seeds of full (85), the LayerNorms in all layers (84) and at layer 0 (80), `extra`'s
  /// records per seed, and the head alone at `head`, except in its `collapsed` seeds, where it
  /// predicts one class for all 400 balanced dev examples.
  static func headStudy(head: Double, collapsed: Set<UInt64>, extra: (UInt64) -> [JournalRecord]) -> [JournalRecord] {
    var records: [JournalRecord] = []
    let gold = (0..<400).map { $0 % 2 }
    for seed in UInt64(1)...3 {
      records.append(seeded(["full"], .all, seed: seed, accuracy: 0.85, trainable: 1000))
      records.append(seeded(["layernorm"], .all, seed: seed, accuracy: 0.84, trainable: 26))
      records.append(seeded(["layernorm"], .indices([0]), seed: seed, accuracy: 0.80, trainable: 18))
      records += extra(seed)
      var h = seeded(["classifier"], .all, seed: seed, accuracy: head, trainable: 10)
      if collapsed.contains(seed) {
        h.result.devPredictions = DevPredictions(predicted: [Int](repeating: 1, count: 400), gold: gold, classes: 2)
        h.result.collapse = Collapse(predictedShare: 1, goldShare: 0.5, reason: "100.0% of dev predictions in one class")
      }
      records.append(h)
    }
    return records
  }

  /// A head that collapsed in every run is never scored: claims 1 and 2 compare against the dev set's
  /// majority class instead (here 50.0 on balanced labels), with its interval over dev examples, and
  /// name the substitution; its one deterministic score does not count as a seed.
  func testCollapsedHeadLeavesTheMajorityClassAsTheFloor() throws {
    let results = try StudyResults(records: Self.headStudy(head: 0.5, collapsed: [1, 2, 3]) { seed in
      [Self.seeded(["layernorm"], .indices([1]), seed: seed, accuracy: 0.52, trainable: 18)]
    })
    XCTAssertNil(results.best(CellGroup(task: "rt-vader", set: "classifier", layers: .all)), "a collapsed head is not scored")
    let floor = try XCTUnwrap(results.floor("rt-vader"))
    XCTAssertEqual(floor.mean, 50.0, accuracy: 1e-9)
    let i = try XCTUnwrap(floor.interval)
    XCTAssertEqual(i[1] - i[0], 2 * 1.96 * 100 * (0.25 / 400).squareRoot(), accuracy: 2.5, "binomial width over 400 examples")
    let claims = ReportClaims.claims(results)
    let c1 = try XCTUnwrap(claims.first { $0.contains("claim 1") }), c2 = try XCTUnwrap(claims.first { $0.contains("claim 2") })
    XCTAssertTrue(c1.contains("head only collapsed in every run, so the floor is the dev majority class 50.0"), c1)
    XCTAssertTrue(c1.contains("layernorm 84.0") && c1.contains("ticket"), c1)
    XCTAssertTrue(c1.contains("3 seeds per cell"), c1)
    XCTAssertTrue(c2.contains("floor is the dev majority class"), c2)
    // Layer 0 (80) is far above 50: acceptable; layer 1 (52) is within the interval: undecided.
    XCTAssertTrue(c2.contains("**undecided (partly supported to supported)**, 1 of 2 layers, 1 undecided (3 seeds per cell)"), c2)
  }

  /// A head that collapsed in two of three seeds stands for the majority class too (its one counted
  /// seed is the exception, and one seed is no cell to compare with); one collapse in three leaves the
  /// head's two counted seeds as the floor. LoRA's ticket rule uses the same floor.
  func testAHeadCollapsedInMostSeedsLeavesTheMajorityClassAsTheFloor() throws {
    func study(collapsedSeeds: Set<UInt64>) throws -> StudyResults {
      try StudyResults(records: Self.headStudy(head: 0.6, collapsed: collapsedSeeds) { seed in
        var lora = Self.seeded(["query"], .all, seed: seed, accuracy: 0.83, trainable: 40)
        lora.spec.options.method = .lora; lora.spec.options.loraRank = 8; lora.spec.options.loraAlpha = 8
        lora.specHash = lora.spec.hash
        return [lora]
      })
    }
    func lines(_ r: StudyResults) -> [String] { ReportClaims.claims(r) + ReportClaims.loraClaims(r) }
    let mostCollapsed = try study(collapsedSeeds: [1, 2]), most = lines(mostCollapsed)
    let c1 = try XCTUnwrap(most.first { $0.contains("claim 1") }), l1 = try XCTUnwrap(most.first { $0.contains("LoRA 1") })
    XCTAssertTrue(c1.contains("head only collapsed in 2 of 3 seeds, so the floor is the dev majority class 50.0"), c1)
    XCTAssertTrue(c1.contains("(3 seeds per cell)"), c1)
    XCTAssertTrue(l1.contains("(3 seeds per cell; head only collapsed in 2 of 3 seeds, so the floor is the dev majority class 50.0"), l1)
    XCTAssertTrue(l1.contains("query 83.0") && l1.contains("ticket"), l1)
    // `--compare` names the seeds behind each claim's compared cells, not the fewest of the whole study.
    let compared = ReportClaims.comparison(mostCollapsed, mostCollapsed, names: ("A", "B"))
    XCTAssertTrue(compared.contains { $0.hasPrefix("| rt-vader | 1 | supported (3 seeds) |") }, compared.joined(separator: "\n"))
    let one = lines(try study(collapsedSeeds: [1]))
    let o1 = try XCTUnwrap(one.first { $0.contains("claim 1") }), ol = try XCTUnwrap(one.first { $0.contains("LoRA 1") })
    XCTAssertTrue(o1.contains("head only 60.0") && !o1.contains("majority"), o1)
    XCTAssertTrue(o1.contains("1 of 3 cells has fewer than 3"), o1)
    XCTAssertTrue(ol.contains("1 of 3 cells has fewer than 3") && !ol.contains("majority"), ol)
  }

  func testClaimsHaveVerdictsSeedsAndControlsBesideTheirCells() throws {
    var records: [JournalRecord] = []
    func add(_ m: [TrainableModule], _ l: LayerSelection, _ scores: [Double], trainable: Int, meanAbs: Double? = nil, k: Int? = nil) {
      for (i, a) in scores.enumerated() {
        records.append(Self.seeded(m, l, seed: UInt64(i + 1), accuracy: a, trainable: trainable, meanAbs: meanAbs, randomCount: k))
      }
    }
    add(["full"], .all, [0.85, 0.86, 0.84], trainable: 1000)
    add(["classifier"], .all, [0.60, 0.61, 0.59], trainable: 10)
    add(["random"], .all, [0.62, 0.63, 0.61], trainable: 26, k: 16)
    // Module-wise: five clear tickets (at full's level); key far below full (not a ticket); value on
    // the criterion (3 points under full): undecided.
    for (m, base) in [("query", 0.85), ("attn_out", 0.85), ("intermediate", 0.86), ("output", 0.85), ("layernorm", 0.85),
                      ("key", 0.70), ("value", 0.82)] {
      add([TrainableModule(rawValue: m)!], .all, [base, base + 0.005, base - 0.005], trainable: 100)
    }
    // Layer-wise, two layers: score rises with the module's magnitude; LayerNorms far above the head.
    for (i, m) in Preset.paperModules.enumerated() {
      for l in 0..<2 {
        let score = 0.65 + 0.02 * Double(i) + 0.005 * Double(l)
        add([m], .indices([l]), [score, score + 0.005, score - 0.005], trainable: m == "layernorm" ? 26 : 100,
            meanAbs: 0.05 + 0.1 * Double(i) + 0.01 * Double(l))
      }
    }
    add(["random"], .indices([0]), [0.63, 0.64, 0.62], trainable: 26, k: 16)
    let results = try StudyResults(records: records)
    let claims = ReportClaims.claims(results)
    XCTAssertEqual(claims.count, 3, claims.joined(separator: "\n"))
    XCTAssertTrue(claims[0].contains("**partly supported**, 5 of 7 modules tickets, 1 undecided (3 seeds per cell)"), claims[0])
    XCTAssertTrue(claims[0].contains("key 70.0 [") && claims[0].contains("(n=3) not;"), claims[0])
    XCTAssertTrue(claims[0].contains(" value 82.0 [") && claims[0].contains("undecided"), claims[0])
    XCTAssertTrue(claims[1].contains("claim 2") && claims[1].contains("**supported**, 2 of 2 layers, 0 undecided (3 seeds per cell)"), claims[1])
    XCTAssertTrue(claims[1].contains("vs random of that layer 63.0 ["), claims[1])
    XCTAssertTrue(claims[2].contains("claim 3") && claims[2].contains("**supported**") && claims[2].contains("ρ = 1.00")
                  && claims[2].contains("over 14 (module, layer) cells"), claims[2])
    XCTAssertFalse(claims.joined().contains("±"), "no standard deviation where intervals exist")
  }

  /// A search whose candidates all scored at or below chance's band on the rung's examples (half of
  /// 400 balanced: up to 0.5 + 0.069) is counted and marked "(at chance)"; one where a candidate
  /// rose above it is not.
  func testASearchAtChanceIsMarkedInTheReport() throws {
    func searched(_ modules: [TrainableModule], accuracies: [Double]) -> JournalRecord {
      let sel = LearningRateSelection(candidates: accuracies.enumerated().map { i, a in
        .init(learningRate: [1e-3, 3e-3, 1e-2][i], dev: ["accuracy": a, "loss": 0.69], steps: 20) },
        chosen: 3e-3, rungSteps: 20, bounds: [1e-4, 1])
      return Self.seeded(modules, .all, seed: 1, accuracy: 0.6, trainable: 100, selection: sel)
    }
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chance-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("journal.jsonl")
    do {
      let j = try Journal(url: url)
      try j.append(searched([.query], accuracies: [0.52, 0.56, 0.35]))
      try j.append(searched([.key], accuracies: [0.52, 0.58, 0.45]))
    }
    let md = try StudyReport(journals: [url]).markdown()
    XCTAssertTrue(md.contains("1 of 2 searches ended with no candidate distinguishable from chance"), md)
    let lines = md.split(separator: "\n")
    XCTAssertTrue(try XCTUnwrap(lines.first { $0.hasPrefix("- rt-vader query@all layers seed 1:") }).hasSuffix("(at chance)"), md)
    XCTAssertFalse(try XCTUnwrap(lines.first { $0.hasPrefix("- rt-vader key@all layers seed 1:") }).contains("at chance"), md)
  }

  /// Cells searched before the last rung moved past chance (`rungPastChance`) and after are two
  /// experiments: a journal holding both is refused with the task named, never pooled.
  func testSearchesUnderTwoRungRulesAreNotPooled() throws {
    let sel = LearningRateSelection(candidates: [1e-3, 3e-3, 1e-2].map { .init(learningRate: $0, dev: ["accuracy": 0.7], steps: 20) },
                                    chosen: 3e-3, rungSteps: 20, bounds: [1e-4, 1])
    let old = Self.seeded([.query], .all, seed: 1, accuracy: 0.7, trainable: 100, selection: sel)
    var new = Self.seeded([.key], .all, seed: 1, accuracy: 0.7, trainable: 100, selection: sel)
    XCTAssertNoThrow(try StudyResults(records: [old, new]))
    new.spec.options.rungPastChance = true
    new.specHash = new.spec.hash
    XCTAssertNotEqual(new.spec.hash, { var s = new.spec; s.options.rungPastChance = false; return s.hash }())
    XCTAssertThrowsError(try StudyResults(records: [old, new])) { error in
      XCTAssertTrue("\(error)".contains("task 'rt-vader' mixes training settings"), "\(error)")
    }
  }

  /// A quick-preset journal: each rate group searches within its own bounds and seeds 2 and 3 name
  /// the seed whose rate they reuse. Both are the learning-rate axis, not a second experiment, so
  /// one report takes them all (it once refused the default study for its bounds).
  func testQuickPresetBoundsAndReusedRatesMakeOneReport() throws {
    let preset = Preset.quick(layerNormCountOneLayer: 16, layers: 2)
    var records: [JournalRecord] = []
    for (m, k) in [([TrainableModule.full], nil), ([.query], nil), ([.layernorm], nil), ([.random], 16)] as [([TrainableModule], Int?)] {
      for seed in UInt64(1)...3 {
        let candidates = try XCTUnwrap(preset.learningRates)(m, false)
        var rec = Self.seeded(m, .all, seed: seed, accuracy: 0.8, trainable: 100, randomCount: k,
                              selection: LearningRateSelection(candidates: candidates.map { LearningRateSelection.Candidate(
                                learningRate: $0, dev: ["accuracy": 0.8], steps: 10) }, chosen: candidates[1], rungSteps: 10))
        var o = preset.options
        o.seed = seed; o.learningRate = rec.spec.options.learningRate
        o.learningRateCandidates = candidates; o.rateFromSeed = rec.spec.options.rateFromSeed
        o.learningRateBounds = preset.learningRateBounds?(m)
        rec.spec.options = o
        rec.specHash = rec.spec.hash
        records.append(rec)
      }
    }
    XCTAssertEqual(Set(records.map { $0.spec.options.learningRateBounds ?? [] }).count, 4, "one pair of bounds per rate group")
    let results = try StudyResults(records: records)
    for set in ["full", "query", "layernorm", "random(16)"] {
      XCTAssertEqual(results.best(CellGroup(task: "rt-vader", set: set, layers: .all))?.n, 3, set)
    }
    // A searched cell not yet run is named by its seed (its spec's rate is 0: chosen on dev).
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("partial-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("journal.jsonl")
    do {
      let j = try Journal(url: url)
      for r in records where !(r.spec.modules == [.query] && r.spec.options.seed == 3) { try j.append(r) }
    }
    let md = try StudyReport(journals: [url]).markdown()
    XCTAssertTrue(md.contains("- rt-vader query@all: 1 of 3 missing (seed 3)"), md)
  }

  /// `report A B --compare`: the verdicts side by side, and the cells scored in both paired: three
  /// seeds of three sets, the head unchanged, full moved by +1 point and query by +3: mean +4/3.
  func testComparisonPairsCellsAndNamesReversals() throws {
    func study(seeds: ClosedRange<UInt64> = 1...3, _ shift: (String) -> Double) throws -> StudyResults {
      var records: [JournalRecord] = []
      for (m, base) in [("full", 0.85), ("classifier", 0.60), ("query", 0.84)] {
        for seed in seeds {
          records.append(Self.seeded([TrainableModule(rawValue: m)!], .all, seed: seed,
                                     accuracy: base + shift(m) + 0.01 * Double(seed - seeds.lowerBound + 1), trainable: 100))
        }
      }
      return try StudyResults(records: records)
    }
    let a = try study { _ in 0 }
    let b = try study { m in m == "full" ? 0.01 : m == "query" ? 0.03 : 0 }
    let lines = ReportClaims.comparison(a, b, names: ("A", "B"))
    let paired = try XCTUnwrap(lines.last)
    XCTAssertTrue(paired.contains("scored in both: 9.") && paired.contains("Mean difference B − A: +1.33 points"), paired)
    // differences: 0 (classifier), +1 (full) and +3 (query), three seeds each
    let d = [0.0, 0, 0, 1, 1, 1, 3, 3, 3], m = d.reduce(0, +) / 9
    let se = (d.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 8).squareRoot() / 3
    XCTAssertTrue(paired.contains(String(format: "standard error %.2f over cells (beyond one", se)), paired)
    XCTAssertTrue(paired.contains("3 of 9 cells moved by more than 2 points"), paired)
    XCTAssertTrue(lines.contains { $0.contains("claim 1") || $0.hasPrefix("| rt-vader | 1 |") }, lines.joined(separator: "\n"))
    // Other seeds share no cell: the sets pair instead, each its mean over seeds (+0, +1, +3).
    let other = try XCTUnwrap(ReportClaims.comparison(a, try study(seeds: 4...6) { m in m == "full" ? 0.01 : m == "query" ? 0.03 : 0 },
                                                     names: ("A", "C")).last)
    XCTAssertTrue(other.contains("Paired cells (") && other.contains("0 scored in both"), other)
    XCTAssertTrue(other.contains("Paired sets (") && other.contains("scored in both: 3. Mean difference C − A: +1.33 points"), other)
  }

  func testOneSeedIsNeverAVerdictToQuote() throws {
    let records = [Self.seeded(["full"], .all, seed: 1, accuracy: 0.85, trainable: 1000),
                   Self.seeded(["classifier"], .all, seed: 1, accuracy: 0.60, trainable: 10),
                   Self.seeded(["query"], .all, seed: 1, accuracy: 0.85, trainable: 100)]
    let claims = ReportClaims.claims(try StudyResults(records: records))
    XCTAssertTrue(claims[0].contains("1 seed per cell; 3 of 3 cells have fewer than 3, too few for a verdict to quote"), claims[0])
    XCTAssertFalse(claims[0].contains("±"), claims[0])
    // Three seeds everywhere but the head (its other seeds collapsed, say): the one short cell is named
    // as such, in the singular.
    let mixed = (1...3).flatMap { seed in
      [Self.seeded(["full"], .all, seed: seed, accuracy: 0.85, trainable: 1000),
       Self.seeded(["query"], .all, seed: seed, accuracy: 0.85, trainable: 100)]
    } + [Self.seeded(["classifier"], .all, seed: 1, accuracy: 0.60, trainable: 10)]
    let claim = ReportClaims.claims(try StudyResults(records: mixed))[0]
    XCTAssertTrue(claim.contains("1-3 seeds per cell; 1 of 3 cells has fewer than 3, too few for a verdict to quote"), claim)
  }

  /// Known case: three seeds at 60, 70 and 80 (large dev set, so the example noise is small): the mean
  /// of three seeds drawn with replacement is 60 with probability 1/27 (3.7% > 2.5%), and 80 likewise,
  /// so the 95% interval spans about [60, 80], widened a little by the examples. Three seeds at the
  /// same accuracy 70, each wrong on its own random 30% of the examples: the draws average one seed
  /// thrice (3/27: variance p(1-p)/n), two alike (18/27: 5/9 of it) or three distinct (6/27: 1/3 of
  /// it), 0.556 p(1-p)/n in all, so the interval is 2·1.96·sqrt(0.556·0.21/4000) = 2.12 points wide.
  func testCombinedIntervalOverSeedsAndExamples() throws {
    let spread = try StudyResults(records: [0.6, 0.7, 0.8].enumerated().map {
      Self.seeded(["layernorm"], .all, seed: UInt64($0.offset + 1), accuracy: $0.element, n: 4000, trainable: 10)
    })
    let s = try XCTUnwrap(spread.best(CellGroup(task: "rt-vader", set: "layernorm", layers: .all)))
    XCTAssertTrue(s.combined)
    let i = try XCTUnwrap(s.interval)
    XCTAssertEqual(i[0], 60.5, accuracy: 1, "\(i)"); XCTAssertEqual(i[1], 79.5, accuracy: 1, "\(i)")
    XCTAssertEqual(ReportFormat.summary(s), "70.0 [\(ReportFormat.score(i[0])), \(ReportFormat.score(i[1]))] (n=3)")
    let same = try StudyResults(records: (1...3).map {
      Self.seeded(["layernorm"], .all, seed: UInt64($0), accuracy: 0.7, n: 4000, trainable: 10)
    })
    let j = try XCTUnwrap(same.best(CellGroup(task: "rt-vader", set: "layernorm", layers: .all))?.interval)
    XCTAssertEqual(j[1] - j[0], 2 * 1.96 * (0.556 * 0.7 * 0.3 / 4000).squareRoot() * 100, accuracy: 0.35, "\(j)")
  }

  func testACollapsedCellIsListedAndNeverScored() throws {
    var collapsed = Self.seeded(["layernorm"], .all, seed: 2, accuracy: 0.5, trainable: 10)
    collapsed.result.collapse = Collapse(predictedShare: 1, goldShare: 0.5, reason: "100.0% of dev predictions in one class")
    collapsed.result.restarts = [.init(seed: 2, dev: ["accuracy": 0.5], steps: 10, chosen: nil,
                                       collapse: collapsed.result.collapse!)]
    let records = [Self.seeded(["layernorm"], .all, seed: 1, accuracy: 0.8, trainable: 10), collapsed]
    let results = try StudyResults(records: records)
    XCTAssertEqual(results.best(CellGroup(task: "rt-vader", set: "layernorm", layers: .all))?.n, 1)
    XCTAssertEqual(results.collapsed.count, 1)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("collapsed-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let url = folder.appendingPathComponent("journal.jsonl")
    do { let j = try Journal(url: url); for r in records { try j.append(r) } }
    let md = try StudyReport(journals: [url]).markdown()
    XCTAssertTrue(md.contains("collapsed after 1 restart(s): 100.0% of dev predictions in one class (not counted)"), md)
    XCTAssertTrue(md.contains("1 of 2 checked cells collapsed"), md)
  }

  func testCompareNamesReversalsAndUndecided() {
    XCTAssertTrue(ReportClaims.reverses("supported", "not supported"))
    XCTAssertTrue(ReportClaims.reverses("partly supported", "contradicted"))
    XCTAssertFalse(ReportClaims.reverses("supported", "partly supported"))
    XCTAssertFalse(ReportClaims.reverses("supported", "undecided (partly supported to supported)"))
    XCTAssertEqual(ReportClaims.verdict([.yes, .yes, .undecided]), "undecided (partly supported to supported)")
    XCTAssertEqual(ReportClaims.verdict([.yes, .no, .undecided]), "partly supported")
    XCTAssertEqual(ReportClaims.verdict([.no, .no]), "not supported")
    XCTAssertEqual(ReportClaims.decide([-1, 2]), .undecided)
    XCTAssertEqual(ReportClaims.decide([0.1, 2]), .yes)
    XCTAssertEqual(ReportClaims.decide(nil), .undecided)
  }
}

import ArgumentParser
import Foundation
import PETL

/// `swift-petl grid` (the default command): the study. Rank 0 plans the cells and hands them out,
/// costliest first, to groups of `--dp` ranks; finished cells go to the journal, and a rerun of the
/// same command resumes. Without mpirun it runs as one rank.
struct GridCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "grid",
    abstract: "Run the study grid (task x trainable set x layer x seed x learning rate) over MPI ranks.",
    discussion: """
      With no flags: the `quick` preset on the embedded default task (rt-vader, fetched by launch/setup).
      --preset paper runs the GLUE tasks found under --data-dir with the README's protocol. Any flag given
      replaces the preset's value. --modules replaces the preset's sets; --layers then says where they
      train: all (module-wise), each (one cell per layer), or a list of layers (one cell per listed layer).
      Exit code 75 means the grid stopped on a signal with cells left: rerun the same command to resume.
      """)

  @Option(help: "quick (rt-vader) or paper (GLUE tasks in --data-dir).") var preset: String = "quick"
  @OptionGroup var location: LocationFlags
  @Option(help: "Tasks, comma-separated (default: the preset's).") var tasks: String?
  @Option(help: "Trainable sets, comma-separated; a+b trains both in one cell (default: the preset's).") var modules: String?
  @Option(help: "all, each, or I[,J...] (with --modules; default all).") var layers: String = "all"
  @Option(help: "Seeds, comma-separated (default: the preset's).") var seeds: String?
  @Option(help: "Learning rates for every cell, comma-separated (default: per module family).") var lrs: String?
  @Option(help: ArgumentHelp("How a cell's learning rate is chosen among several: grid (one cell per rate; the report takes the best on dev) or halving (one cell: every rate trains a twelfth of the steps, the two lowest losses on half of dev a fifth, the better of them to the end).",
                             discussion: "Default: halving in the quick preset, grid in the paper preset and with --lrs.")) var lrSelection: LRSelection?
  @Option(help: "Scalars the `random` control trains.") var randomCount: Int?
  @Option(help: "Match the `random` control to a set's size: SET[@LAYERS], e.g. layernorm@0 (one layer's LayerNorms).") var match: String?
  @Option(help: "Ranks per data-parallel group; must divide the number of ranks.") var dp: Int = 1
  @Option(help: "Results folder (default results/<preset>, or results/grid with --modules).") var results: String?
  @Option(help: "Journal file (default <results>/journal.jsonl).") var journal: String?
  @Flag(help: "Rerun cells the journal records as failed.") var retryFailed = false
  @Flag(help: "Print the plan and exit.") var planOnly = false
  @Flag(help: "No progress lines from inside cells (each cell still prints one line when it ends).") var quiet = false
  @Option(help: "Seconds between a cell's progress lines.") var progressEvery: Double = 30
  @Flag(help: "Save each finished cell's trainable parameters to <results>/adapters/<spec_hash>.safetensors.") var saveAdapters = false
  @Option(help: ArgumentHelp("End the job when a cell has run this many seconds (default: 5x its predicted time + 120 s).",
                             discussion: "A hung or lost rank would otherwise hold the allocation until its time limit. The prediction comes from the cost model, fitted to the cells already finished (before the first, a deliberately slow prior rate).")) var cellTimeout: Double?
  @OptionGroup var training: TrainingFlags

  func run() throws {
    // Stop requests are recorded from process start (SwiftPETL.main); checks that need no MPI come
    // first, so a bad flag fails fast on every rank alike.
    if let t = cellTimeout, !(t > 0 && t.isFinite) { throw ValidationError("--cell-timeout must be a positive number of seconds") }
    guard progressEvery > 0 && progressEvery.isFinite else { throw ValidationError("--progress-every must be a positive number of seconds") }
    let fault = try FaultInjection.fromEnvironment()
    let config = try BertConfig.load(location.modelURL.appendingPathComponent("config.json"))
    let plan = try makePlan(config: config)
    let world = try Communicator.world()
    try fault?.fire(at: .startup, worldRank: world.rank)
    configureThreads(world: world)
    let resultsDir = URL(fileURLWithPath: results ?? "results/\(modules == nil ? preset : "grid")")
    let journalURL = journal.map { URL(fileURLWithPath: $0) } ?? resultsDir.appendingPathComponent("journal.jsonl")
    if world.rank == 0 { printPlan(plan, config: config, world: world) }
    if planOnly { return }

    var journalFile: Journal? = nil
    var inputs: [String: CellInputs] = [:]
    if world.rank == 0 {
      try FileManager.default.createDirectory(at: journalURL.deletingLastPathComponent(), withIntermediateDirectories: true)
      let j = try Journal(url: journalURL)
      for note in j.notes { print("journal: " + note) }
      inputs = try CellInputs.current(tasks: plan.cells.map(\.task), modelDirectory: location.modelURL,
                                      dataDirectory: location.dataURL, fingerprints: .userCache())
      print("journal: \(journalURL.path) (\(j.done(inputs: inputs).ok.count) cells already ok with these inputs)")
      journalFile = j
    }
    let context = try StudyContext(modelDirectory: location.modelURL, dataDirectory: location.dataURL)
    var cost = CostModel(numLayers: config.numHiddenLayers)
    cost.hiddenSize = config.hiddenSize
    for task in Set(plan.cells.map(\.task)) {
      // Reads (and checks) every task's data before the first cell: a missing or malformed file is
      // one error line now, not a failure an hour into the grid.
      let d = try context.data(try TaskDescriptor.named(task), options: plan.cells.first { $0.task == task }!.options)
      cost.trainExamples[task] = d.train.count
    }
    let quiet = self.quiet, progressEvery = self.progressEvery
    let adapterDir: URL? = saveAdapters ? journalURL.deletingLastPathComponent().appendingPathComponent("adapters") : nil
    if let adapterDir, world.rank == 0 { try FileManager.default.createDirectory(at: adapterDir, withIntermediateDirectories: true) }
    let worldRank = world.rank
    let summary = try Coordinator.runGrid(
      cells: plan.cells, journal: journalFile, world: world, dp: dp, retryFailed: retryFailed, cost: cost,
      inputs: inputs, watchdog: Watchdog(fixedSeconds: cellTimeout),
      runner: { spec, group in
        try fault?.fire(at: .cell, worldRank: worldRank)
        try fault?.fire(at: .hang, worldRank: worldRank)
        let log: (String) -> Void = !quiet && group.rank == 0 ? { print("  [\(spec.label)] \($0)"); fflush(stdout) } : { _ in }
        var trainer = CellTrainer(spec: spec, context: context, group: group, log: log)
        trainer.progressInterval = progressEvery
        let outcome = try trainer.run()
        if let adapterDir, group.rank == 0 {
          try AdapterFile.save(outcome.model, trainable: outcome.trainable,
                               to: adapterDir.appendingPathComponent("\(spec.hash).safetensors"),
                               metadata: ["swift_petl.task": spec.task, "swift_petl.spec_hash": spec.hash])
        }
        return outcome.result
      },
      log: { line in print(line); fflush(stdout) })
    guard world.rank == 0 else {
      if summary.resumable { throw ExitCode(GridSummary.resumableExitCode) }
      return
    }
    print("grid: \(summary.ok) ok, \(summary.failed) failed, \(summary.alreadyOK) already done, \(summary.remaining) left")
    let folder = journalURL.deletingLastPathComponent()
    do {
      try writeMagnitudes(folder: folder, adapters: adapterDir, journal: journalFile)
    } catch {
      print("magnitudes: not written (\(error))")
    }
    let reportDir = folder.appendingPathComponent("report")
    do {
      let written = try StudyReport(journals: [journalURL]).write(to: reportDir)
      print("report: \(reportDir.path)/report.md (\(written.count) files)")
    } catch {
      print("report: not written (\(error))")
    }
    print("results: \(journalURL.deletingLastPathComponent().path)")
    if summary.resumable { throw ExitCode(GridSummary.resumableExitCode) }
  }

  /// Weight magnitudes of the pretrained model into <results>/magnitudes, with how far each saved
  /// module-wise adapter moved its modules.
  func writeMagnitudes(folder: URL, adapters: URL?, journal: Journal?) throws {
    let (base, _) = try BertModel.load(directory: location.modelURL, numLabels: 2)
    var tuned: [(name: String, model: BertModel, touched: Set<String>)] = []
    if let adapters, let journal {
      for r in journal.records where r.result.status == .ok && r.spec.layers == .all && r.spec.modules != ["full"] {
        let url = adapters.appendingPathComponent("\(r.spec.hash).safetensors")
        guard FileManager.default.fileExists(atPath: url.path) else { continue }
        let labels = (try SafeTensors.open(url)).info("classifier.weight")?.shape.first ?? 2
        let (m, _) = try BertModel.load(directory: location.modelURL, numLabels: labels)
        let names = try AdapterFile.load(url, into: m)
        tuned.append((r.spec.label.replacingOccurrences(of: " ", with: "_"), m, Set(names)))
      }
    }
    _ = try Magnitudes(base: base, tuned: tuned).write(to: folder.appendingPathComponent("magnitudes"), layers: base.dims.layers)
  }

  /// The node's cores split evenly over its ranks (engine threads per rank) unless the user chose
  /// (OPENBLAS_NUM_THREADS, which sets the engine's threads; OpenBLAS itself runs one).
  func configureThreads(world: Communicator) {
    let env = ProcessInfo.processInfo.environment
    guard env["OPENBLAS_NUM_THREADS"] == nil, env["OMP_NUM_THREADS"] == nil else { return }
    let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? world.size
    Parallel.setThreads(max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local)))
  }

  func makePlan(config: BertConfig) throws -> GridPlan {
    let L = config.numHiddenLayers
    let layerNormOneLayer = 4 * config.hiddenSize
    var p: Preset
    switch preset {
    case "quick": p = .quick(layerNormCountOneLayer: layerNormOneLayer, layers: L)
    case "paper":
      let found = TaskDescriptor.all.filter { $0.name != "rt-vader" && FileManager.default.fileExists(
        atPath: location.dataURL.appendingPathComponent($0.folder).appendingPathComponent("train.tsv").path) }
      guard !found.isEmpty || tasks != nil else {
        throw ValidationError("--preset paper: no GLUE task folder with train.tsv under --data-dir \(location.dataDir)")
      }
      p = .paper(tasks: found.map(\.name))
    default: throw ValidationError("--preset must be quick or paper, got '\(preset)'")
    }
    if let t = tasks { p.tasks = commaList(t) }
    for t in p.tasks { _ = try TaskDescriptor.named(t) }
    let gridLayers = try GridLayers.parse(layers)
    var seedList = p.seeds
    if let s = seeds {
      seedList = try commaList(s).map { v in
        guard let x = UInt64(v) else { throw ValidationError("--seeds: '\(v)' is not a non-negative integer") }
        return x
      }
    }
    let explicitLRs: [Double]? = try lrs.map { try commaList($0).map { v in
      guard let x = Double(v), x > 0, x.isFinite else { throw ValidationError("--lrs: '\(v)' is not a positive number") }
      return x
    } }
    var counts = p.randomCounts, layerCounts = p.layerRandomCount.map { [$0] } ?? []
    if let k = randomCount { counts = [k]; layerCounts = [k] }
    if let m = match { counts = [try matchedCount(m, config: config)]; layerCounts = counts }
    let select = lrSelection.map { $0 == .halving } ?? (p.selectLearningRate && lrs == nil)
    var families: [(sets: [String], layers: GridLayers, counts: [Int])] = [(p.moduleWise, .all, counts), (p.layerWise, .each, layerCounts)]
    if let m = modules { families = [(commaList(m), gridLayers, counts)] }
    let base = try training.apply(to: p.options)
    // The model's tables bound what the tasks may feed it: one error line now, on every rank alike.
    for t in p.tasks {
      try config.checkInputs(task: TaskDescriptor.named(t), maxLength: base.maxLength,
                             configPath: location.modelURL.appendingPathComponent("config.json").path)
    }
    let modelName = location.modelURL.standardizedFileURL.lastPathComponent
    var cells: [CellSpec] = [], notes: [String] = [], seen = Set<String>()
    for task in p.tasks {
      // The paper preset gives small tasks more seeds.
      let taskSeeds = seeds == nil && p.name == "paper" && Preset.smallTasks.contains(task) ? [1, 2, 3, 4, 5] : seedList
      for (sets, where_, familyCounts) in families {
        for set in sets {
          let members = set.split(separator: "+").map(String.init)
          let rates = explicitLRs ?? p.learningRates?(members)
          for k in members.contains("random") ? familyCounts.map(Optional.some) : [nil] {
            if members.contains("random") && k == nil { continue }
            let plan = try GridPlan(tasks: [task], modules: [set], layers: where_, seeds: taskSeeds, learningRates: rates,
                                    selectLearningRate: select, base: base, model: modelName, numLayers: L, randomCount: k)
            for c in plan.cells where seen.insert(c.hash).inserted { cells.append(c) }
            for n in plan.notes where !notes.contains(n) { notes.append(n) }
          }
        }
      }
    }
    if cells.isEmpty { throw ValidationError("the grid is empty") }
    return GridPlan(cells: cells, notes: notes)
  }

  /// `--match SET[@LAYERS]`: the scalars SET trains, without the head (both sides train the head).
  func matchedCount(_ text: String, config: BertConfig) throws -> Int {
    let parts = text.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    guard let name = parts.first, !name.isEmpty else {
      throw ValidationError("--match '\(text)': expected SET[@LAYERS], e.g. layernorm@0")
    }
    let layout = ParameterLayout(dims: ModelDims(config: config, numLabels: 2))
    let layers = parts.count > 1 ? try LayerSelection.parse(parts[1], flag: "--match") : .indices([0])
    let set = try TrainableSet(modules: [name], layers: layers, layout: layout)
    let head = try TrainableSet(modules: ["classifier"], layers: .all, layout: layout)
    guard set.count > head.count else { throw ValidationError("--match \(text): that set trains nothing beyond the head") }
    return set.count - head.count
  }

  func printPlan(_ plan: GridPlan, config: BertConfig, world: Communicator) {
    let layout = ParameterLayout(dims: ModelDims(config: config, numLabels: 2))
    print("plan: \(plan.cells.count) cells on \(world.size) rank(s), data-parallel groups of \(dp)")
    var bySet: [String: (cells: Int, params: Int)] = [:]
    var order: [String] = []
    for c in plan.cells {
      let key = c.modules.joined(separator: "+") + (c.layers == .all ? "@all" : "@layer") + (c.randomCount.map { "(\($0))" } ?? "")
      let n = (try? TrainableSet(modules: c.modules, layers: c.layers, layout: layout, randomCount: c.randomCount, seed: c.options.seed).count) ?? 0
      if bySet[key] == nil { order.append(key); bySet[key] = (0, n) }
      bySet[key]!.cells += 1
    }
    for k in order {
      let v = bySet[k]!
      let name = k.padding(toLength: max(k.count, 26), withPad: " ", startingAt: 0)
      print("  " + name + String(format: " %3d cells %10d trainable (%.4f%% of %d)", v.cells, v.params,
                                  100 * Double(v.params) / Double(layout.count), layout.count))
    }
    for n in plan.notes { print("  note: \(n)") }
  }
}

/// `--lr-selection`.
enum LRSelection: String, ExpressibleByArgument, CaseIterable {
  case grid, halving
}

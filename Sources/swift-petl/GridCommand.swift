import ArgumentParser
import Foundation
import PETLKernels
import PETLModel
import PETLData
import PETLTraining
import PETLDistributed
import PETLStudy

/// `swift-petl grid` (the default command): the study. Rank 0 plans the cells and hands them out,
/// costliest first, to groups of `--dp` ranks; finished cells go to the journal, and a rerun of the
/// same command resumes. Without mpirun it runs as one rank.
struct GridCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "grid",
    abstract: "Run the study grid (task x trainable set x layer x seed x learning rate) over MPI ranks.",
    discussion: """
      With no flags: the `quick` preset on the embedded default task (rt-vader, fetched by launch/setup).
      --preset paper runs the GLUE tasks found under --data-dir with the protocol of docs/study.md. Any flag given
      replaces the preset's value. --modules replaces the preset's sets; --layers then says where they
      train: all (module-wise), each (one cell per layer), or a list of layers (one cell per listed layer).
      Exit code 75 means the grid stopped on a signal with cells left: rerun the same command to resume.
      """)

  @Option(help: "quick (rt-vader), paper (GLUE tasks in --data-dir) or lora (where LoRA should go: the quick preset's task and budget, docs/lora.md).") var preset: PresetName = .quick
  @OptionGroup var location: LocationFlags
  @Option(help: "Tasks, comma-separated: built-in names or paths of folders of your own tasks (docs/tasks.md; default: the preset's).") var tasks: String?
  @Option(help: "Trainable sets, comma-separated; a+b trains both in one cell (default: the preset's).") var modules: String?
  @Option(help: "all, each, or I[,J...] (with --modules; default all).") var layers: String = "all"
  @Option(help: "Seeds, comma-separated (default: the preset's).") var seeds: String?
  @Option(help: "Learning rates for every cell, comma-separated (default: per module family).") var lrs: String?
  @Option(help: ArgumentHelp("How a cell's learning rate is chosen among several: grid (one cell per rate; the report takes the best on dev) or halving (one cell: every rate trains a twelfth of the steps, the two lowest losses on half of dev a fifth, or later while none is above chance, the better of them to the end).",
                             discussion: "Default: halving in the quick and lora presets, grid in the paper preset and with --lrs.")) var lrSelection: LearningRateChoice?
  @Option(help: "Scalars the `random` control trains.") var randomCount: Int?
  @Option(help: "Match the `random` control to a set's size: SET[@LAYERS], e.g. layernorm@0 (one layer's LayerNorms).") var match: String?
  @Option(help: "Ranks per data-parallel group; must divide the number of ranks.") var dp: Int = 1
  @Option(help: "Results folder (default results/<preset>, or results/grid with --modules).") var results: String?
  @Option(help: "Journal file (default <results>/journal.jsonl).") var journal: String?
  @Flag(help: "With halving over several seeds: every seed searches its own rate (default: seeds after the first train at the first seed's choice).") var searchEverySeed = false
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
    let config = try EncoderConfig.load(location.modelURL.appendingPathComponent("config.json"))
    // Every rank resolves the same flags into the same catalog: cells then name their tasks alike.
    var catalog = TaskCatalog()
    let taskNames = try tasks.map { try commaList($0).map { try catalog.resolve($0, flag: "--tasks").name } }
    let planner = StudyPlanner(config: config, modelDirectory: location.modelURL, dataDirectory: location.dataURL, tasks: catalog)
    let studyRequest = try request(tasks: taskNames)
    let local = try training.precisionFlag.choice(print: false)
    func planned(_ precision: Precision) throws -> GridPlan {
      try planner.plan(studyRequest, options: { var o = try training.apply(to: $0); o.precision = precision; return o })
    }
    var plan = try planned(local.precision)
    let world = try Communicator.world()
    try fault?.fire(at: .startup, worldRank: world.rank)
    configureThreads(world: world)
    // auto: bf16 only if every rank has it (the plan's cells name the precision)
    let precision = PrecisionChoice.agreed(training.precisionFlag.precision, local: local, group: world)
    if precision.precision != local.precision { plan = try planned(precision.precision) }
    if world.rank == 0 && training.precisionFlag.precision != .fp32 { print("precision: \(precision.why)") }
    let resultsDir = URL(fileURLWithPath: results ?? "results/\(modules == nil ? preset.rawValue : "grid")")
    let journalURL = journal.map { URL(fileURLWithPath: $0) } ?? resultsDir.appendingPathComponent("journal.jsonl")
    if world.rank == 0 {
      catalog.userTasks.compactMap(\.about).forEach { print($0) }
      planner.describe(plan, ranks: world.size, dp: dp).forEach { print($0) }
    }
    if planOnly { return }
    // Rank 0 journals into this folder and group leaders on any node save adapters there: a folder
    // that is not the same on every node is one line now, not scattered results at the end.
    try SharedFolderCheck.run(folder: journalURL.deletingLastPathComponent(), world: world)

    var journalFile: Journal? = nil
    var inputs: [String: CellInputs] = [:]
    if world.rank == 0 {
      try FileManager.default.createDirectory(at: journalURL.deletingLastPathComponent(), withIntermediateDirectories: true)
      let j = try Journal(url: journalURL)
      for note in j.notes { print("journal: " + note) }
      inputs = try CellInputs.current(tasks: plan.cells.map(\.task), catalog: catalog, modelDirectory: location.modelURL,
                                      dataDirectory: location.dataURL, fingerprints: .userCache(), precision: precision.precision)
      print("journal: \(journalURL.path) (\(j.done(inputs: inputs).ok.count) cells already ok with these inputs)")
      journalFile = j
    }
    let context = try StudyContext(modelDirectory: location.modelURL, dataDirectory: location.dataURL, config: config,
                                   tasks: catalog)
    var cost = CostModel(layout: planner.layout)
    cost.hiddenSize = config.hiddenSize
    for task in Set(plan.cells.map(\.task)) {
      // Reads (and checks) every task's data before the first cell: a missing or malformed file is
      // one error line now, not a failure an hour into the grid.
      let d = try context.data(try catalog.named(task), options: plan.cells.first { $0.task == task }!.options)
      cost.trainExamples[task.lowercased()] = d.train.count
    }
    // Every rank checks the weights against the config before the first cell; rank 0 says what
    // the file holds beyond the model (or lacks), once.
    if let first = plan.cells.first, let summary = try context.checkCheckpoint(numLabels: try catalog.named(first.task).numLabels),
       world.rank == 0 {
      print("checkpoint: " + summary)
    }
    let quiet = self.quiet, progressEvery = self.progressEvery
    let adapterDir: URL? = saveAdapters ? journalURL.deletingLastPathComponent().appendingPathComponent("adapters") : nil
    if let adapterDir, world.rank == 0 { try FileManager.default.createDirectory(at: adapterDir, withIntermediateDirectories: true) }
    let worldRank = world.rank
    let summary = try Coordinator.runGrid(
      cells: plan.planned, journal: journalFile, world: world, dp: dp, retryFailed: retryFailed, cost: cost,
      inputs: inputs, watchdog: Watchdog(fixedSeconds: cellTimeout),
      runner: { cell, group in
        try fault?.fire(at: .cell, worldRank: worldRank)
        try fault?.fire(at: .hang, worldRank: worldRank)
        let spec = cell.spec
        let log: (String) -> Void = !quiet && group.rank == 0 ? { print("  [\(spec.label)] \($0)"); fflush(stdout) } : { _ in }
        var trainer = CellTrainer(spec: spec, context: context, group: group, log: log)
        trainer.inheritedRate = cell.inheritedRate
        trainer.progressInterval = progressEvery
        let outcome = try trainer.run()
        if let adapterDir, group.rank == 0 {
          try AdapterFile.save(outcome.model, trainable: outcome.trainable,
                               to: adapterDir.appendingPathComponent("\(cell.id).safetensors"),
                               metadata: ["swift_petl.task": spec.task, "swift_petl.spec_hash": cell.id])
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
      // Weight magnitudes of the pretrained model, with how far each saved module-wise adapter moved them.
      let adapters = adapterDir.flatMap { dir in journalFile.map { Magnitudes.adapters(of: $0, in: dir) } } ?? []
      _ = try Magnitudes(modelDirectory: location.modelURL, config: config, adapters: adapters)
        .write(to: folder.appendingPathComponent("magnitudes"), layers: config.numHiddenLayers)
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

  /// The node's cores split evenly over its ranks (engine threads per rank) unless the user chose
  /// (OPENBLAS_NUM_THREADS, which sets the engine's threads; OpenBLAS itself runs one).
  func configureThreads(world: Communicator) {
    let env = ProcessInfo.processInfo.environment
    guard env["OPENBLAS_NUM_THREADS"] == nil, env["OMP_NUM_THREADS"] == nil else { return }
    let local = Int(env["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? world.size
    Parallel.setThreads(max(1, ProcessInfo.processInfo.activeProcessorCount / max(1, local)))
  }

  /// The flags as a request to the study's planner (a flag left out: the preset's value); `tasks`:
  /// the names `--tasks` resolved to.
  func request(tasks: [String]?) throws -> StudyRequest {
    var r = StudyRequest()
    r.preset = preset
    r.tasks = tasks
    r.modules = try modules.map { try commaList($0).map { try TrainableModule.parseSet($0) } }
    r.layers = try GridLayers.parse(layers)
    r.seeds = try seeds.map { try commaList($0).map { v in
      guard let x = UInt64(v) else { throw ValidationError("--seeds: '\(v)' is not a non-negative integer") }
      return x
    } }
    r.learningRates = try lrs.map { try commaList($0).map { v in
      guard let x = Double(v), x > 0, x.isFinite else { throw ValidationError("--lrs: '\(v)' is not a positive number") }
      return x
    } }
    r.selection = lrSelection
    if searchEverySeed { r.reuseRates = false }
    r.randomCount = randomCount
    if let m = match {
      // SET[@LAYERS]; without layers, layer 0 (one layer's worth).
      let parts = m.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
      guard let name = parts.first, !name.isEmpty else {
        throw ValidationError("--match '\(m)': expected SET[@LAYERS], e.g. layernorm@0")
      }
      r.match = (try TrainableModule.parseSet(name, flag: "--match"),
                 parts.count > 1 ? try LayerSelection.parse(parts[1], flag: "--match") : .indices([0]))
    }
    return r
  }
}

extension PresetName: ExpressibleByArgument {}
extension LearningRateChoice: ExpressibleByArgument {}

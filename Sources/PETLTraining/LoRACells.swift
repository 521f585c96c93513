import PETLModel
import PETLSupport

extension TrainableModule {
  /// The module kinds a LoRA set adapts, or one error naming the first module of the set that is not
  /// a weight matrix (LoRA adapts linear layers only).
  public static func loraKinds(_ set: [TrainableModule]) throws -> [ModuleKind] {
    try set.map { m in
      guard m.kinds.count == 1, LoRASpec.kinds.contains(m.kinds[0]) else {
        throw PETLError("--method lora: '\(m.rawValue)' is not a weight-matrix module (LoRA adapts \(LoRASpec.kinds.map(\.rawValue).joined(separator: ", ")))")
      }
      return m.kinds[0]
    }
  }
}

extension TrainOptions {
  /// The adapters a cell of `modules` in `layers` trains, for a model of `layerCount` layers; nil
  /// with `method` module. Errors name the flag (a module LoRA cannot adapt, a layer that does not exist).
  public func loraSpec(modules: [TrainableModule], layers: LayerSelection, layerCount: Int) throws -> LoRASpec? {
    guard method == .lora else { return nil }
    let kinds = try TrainableModule.loraKinds(modules)
    let chosen: [Int]
    switch layers {
    case .all: chosen = Array(0..<layerCount)
    case .indices(let idx):
      guard !idx.isEmpty else { throw PETLError("--layers: empty layer list") }
      if let bad = idx.first(where: { $0 >= layerCount }) {
        throw PETLError("--layers: layer \(bad) does not exist (the model has layers 0...\(layerCount - 1))")
      }
      chosen = idx
    }
    return LoRASpec(rank: loraRank, alpha: loraAlpha, dropout: loraDropout, kinds: kinds, layers: chosen)
  }
}

extension CellSpec {
  /// The cell's LoRA adapters (nil for a module cell), on a model of `layerCount` layers.
  public func loraSpec(layerCount: Int) throws -> LoRASpec? {
    try options.loraSpec(modules: modules, layers: layers, layerCount: layerCount)
  }

  /// The cell's trainable set on a model of `dims` (with the cell's adapters when it is a LoRA cell):
  /// what it trains and how many scalars (`TrainableSet.count`), without loading any weights.
  public func trainableSet(dims: ModelDims, seed: UInt64? = nil) throws -> TrainableSet {
    let layout = ParameterLayout(dims: dims, lora: try loraSpec(layerCount: dims.layers))
    return try TrainableSet(modules: modules, layers: layers, layout: layout, randomCount: randomCount,
                            seed: seed ?? options.seed, method: options.method)
  }
}

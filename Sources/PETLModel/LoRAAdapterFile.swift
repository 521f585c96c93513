import Foundation
import PETLSupport

extension AdapterFile {
  /// The LoRA adapters an adapter file holds (`<module>.lora_A.weight` / `.lora_B.weight` tensors,
  /// alpha and dropout from its metadata), resolved against `layout`'s model; nil for a module
  /// adapter. A file whose adapters do not fit the model is an error naming it.
  public static func loraSpec(_ url: URL, layout: ParameterLayout) throws -> LoRASpec? {
    guard FileManager.default.fileExists(atPath: url.path) else { throw PETLError("\(url.path): no such adapter file") }
    let st = try SafeTensors.open(url)
    let family = layout.dims.family, prefix = family.checkpointPrefix
    let names = Set(st.names.map { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : $0 })
    guard names.contains(where: { $0.hasSuffix(".lora_A.weight") }) else { return nil }
    var targets: [LoRATarget] = [], rank: Int?
    for kind in LoRASpec.kinds {
      for l in 0..<layout.dims.layers {
        let path = family.path(kind, layer: l)
        guard names.contains(path + ".lora_A.weight") else { continue }
        guard let a = st.info((st.names.contains(path + ".lora_A.weight") ? "" : prefix) + path + ".lora_A.weight"),
              a.shape.count == 2, a.shape[0] > 0, rank == nil || rank == a.shape[0] else {
          throw PETLError("\(url.path): '\(path).lora_A.weight' is not a rank-R matrix like the file's other adapters")
        }
        rank = a.shape[0]
        targets.append(LoRATarget(module: kind, layer: l))
      }
    }
    let meta = st.metadata
    let known = Set(targets.flatMap { t in [".lora_A.weight", ".lora_B.weight"].map { family.path(t.module, layer: t.layer) + $0 } })
    if let stray = names.first(where: { $0.contains(".lora_") && !known.contains($0) }) {
      throw PETLError("\(url.path): tensor '\(shown(stray))' is not a LoRA adapter of this model")
    }
    guard let r = rank else { throw PETLError("\(url.path): no LoRA adapter of this model") }
    guard let alpha = meta["swift_petl.lora_alpha"].flatMap(Double.init), alpha > 0, alpha.isFinite else {
      throw PETLError("\(url.path): LoRA adapters without a valid swift_petl.lora_alpha in the metadata")
    }
    let dropout = meta["swift_petl.lora_dropout"].flatMap(Double.init) ?? 0
    guard dropout >= 0 && dropout < 1 else { throw PETLError("\(url.path): swift_petl.lora_dropout must be in [0, 1)") }
    return LoRASpec(rank: r, alpha: alpha, dropout: dropout, targets: targets)
  }

  /// `base` with the adapter file applied: loaded over it, or, for LoRA adapters, over a copy of it
  /// with the adapters' slots (`EncoderModel.withLoRA`). Returns the model and the names loaded.
  public static func apply(_ url: URL, to base: EncoderModel) throws -> (EncoderModel, [String]) {
    let model = try loraSpec(url, layout: base.layout).map { base.withLoRA($0, seed: 0) } ?? base
    return (model, try load(url, into: model))
  }
}

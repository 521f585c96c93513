import Foundation
import PETLSupport

/// A LayerNorm-only adapter as PEFT's LN tuning (`LNTuningConfig`, checked with peft 0.21.2):
/// `adapter_config.json` + `adapter_model.safetensors`, which `PeftModel.from_pretrained(base, folder)`
/// loads onto the family's `*ForSequenceClassification` of the base model. LN tuning replaces each
/// targeted LayerNorm module by a trained copy (stored whole, `<module>.ln_tuning_layers.weight` and
/// `.bias`) and saves the freshly initialised head as `modules_to_save`; it has no place for any
/// other tensor, so an adapter with one is refused.
public enum PEFTExport {
  /// The PEFT release whose LN-tuning format this writes (and the reference script loads).
  public static let peftVersion = "0.21.2"
  /// PEFT's key prefix for a model wrapped by `PeftModelForSequenceClassification`.
  static let keyPrefix = "base_model.model."

  /// The LN-tuning adapter's content: the LayerNorm modules it replaces and the head modules it saves
  /// (under `*ForSequenceClassification` names), and its tensors under PEFT's keys.
  public struct Plan {
    public var targetModules: [String] = []
    public var modulesToSave: [String] = []
    public var tensors: [(name: String, slot: ParameterSlot)] = []
  }

  /// What the adapter's tensors (our names: `AdapterFile.load`'s result) become in LN tuning, or an
  /// error naming `source` and the first tensor that is neither a LayerNorm parameter nor the head.
  public static func plan(layout: ParameterLayout, adapterTensors: [String], source: String) throws -> Plan {
    let family = layout.dims.family
    var lnModules: [String] = []
    for name in adapterTensors {
      guard let slot = layout.slot(named: name) else { throw PETLError("\(source): tensor '\(shown(name))' is not a parameter of this model") }
      if family.isHeadTensor(name) { continue }
      guard slot.role == .gamma || slot.role == .beta else {
        throw PETLError("\(source): tensor '\(shown(name))' is neither a LayerNorm nor the head; PEFT's LN tuning (peft \(peftVersion)) holds only whole LayerNorm modules and the head (modules_to_save)")
      }
      let module = layout.modulePath(of: slot)
      if !lnModules.contains(module) { lnModules.append(module) }
    }
    guard !lnModules.isEmpty else {
      throw PETLError("\(source): no LayerNorm tensor; PEFT's LN tuning needs at least one (a head-only adapter is the export itself)")
    }
    var p = Plan()
    for s in layout.slots {
      let module = layout.modulePath(of: s)
      if lnModules.contains(module) {
        let target = family.sequenceClassificationName(module)
        if !p.targetModules.contains(target) { p.targetModules.append(target) }
        let suffix = String(s.name.dropFirst(module.count))  // ".weight" or ".bias"
        p.tensors.append((keyPrefix + target + ".ln_tuning_layers" + suffix, s))
      } else if family.isHeadTensor(s.name) {
        let top = String(s.name.prefix { $0 != "." })
        if !p.modulesToSave.contains(top) { p.modulesToSave.append(top) }
        p.tensors.append((keyPrefix + s.name, s))
      }
    }
    return p
  }

  /// Writes `adapter_config.json` and `adapter_model.safetensors` of `plan` with the model's values
  /// into `folder` (which exists). `baseModel` is the model folder, PEFT's `base_model_name_or_path`.
  public static func write(_ plan: Plan, model: EncoderModel, baseModel: String, into folder: URL) throws {
    try writeTensors(plan, model: model, into: folder)
    let config: [String: Any] = [
      "auto_mapping": NSNull(),
      "base_model_name_or_path": baseModel,
      "exclude_modules": NSNull(),
      "inference_mode": true,
      "modules_to_save": plan.modulesToSave,
      "peft_type": "LN_TUNING",
      "peft_version": peftVersion,
      "revision": NSNull(),
      "target_modules": plan.targetModules,
      "task_type": "SEQ_CLS",
    ]
    try writeConfig(config, into: folder)
  }

  /// `adapter_model.safetensors`: the plan's tensors under PEFT's keys.
  static func writeTensors(_ plan: Plan, model: EncoderModel, into folder: URL) throws {
    let tensors = plan.tensors.map { t in
      (name: t.name, shape: t.slot.shape, values: UnsafeBufferPointer(start: model.pointer(t.slot), count: t.slot.count))
    }
    try SafeTensors.write(to: folder.appendingPathComponent("adapter_model.safetensors"), tensors: tensors,
                          metadata: ["format": "pt"])
  }

  /// `adapter_config.json`, sorted keys.
  static func writeConfig(_ config: [String: Any], into folder: URL) throws {
    var data = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    data.append(UInt8(ascii: "\n"))
    try SequenceClassificationExport.write(data, to: folder.appendingPathComponent("adapter_config.json"))
  }
}

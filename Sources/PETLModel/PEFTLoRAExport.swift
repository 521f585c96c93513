import Foundation
import PETLSupport

/// A LoRA adapter as PEFT's `LoraConfig` (checked with peft 0.21.2): `adapter_config.json` and
/// `adapter_model.safetensors` under PEFT's keys (`base_model.model.<module>.lora_A.weight`, the head
/// under its own names as `modules_to_save`), which `PeftModel.from_pretrained(base, folder)` loads
/// onto the family's `*ForSequenceClassification`. `target_modules` lists every adapted module's full
/// path: PEFT matches a target by equality or by the suffix after a dot, so a short name such as
/// `output.dense` would also adapt `attention.output.dense`.
extension PEFTExport {
  /// The LoRA adapter's content for `model` (which holds the adapters: `AdapterFile.apply`), from the
  /// adapter's tensors (our names); an error naming `source` and the first tensor that is neither an
  /// adapter nor the head.
  public static func loraPlan(layout: ParameterLayout, adapterTensors: [String], source: String) throws -> Plan {
    let family = layout.dims.family
    guard layout.lora != nil else { throw PETLError("\(source): no LoRA adapter") }
    for name in adapterTensors where !family.isHeadTensor(name) {
      guard let slot = layout.slot(named: name), slot.role.isLoRA else {
        throw PETLError("\(source): tensor '\(shown(name))' is neither a LoRA adapter nor the head; a PEFT LoRA adapter holds only these")
      }
    }
    var p = Plan()
    for s in layout.slots {
      if s.role.isLoRA {
        let module = String(s.name.dropLast(".lora_A.weight".count))  // same length for lora_B
        let target = family.sequenceClassificationName(module)
        if !p.targetModules.contains(target) { p.targetModules.append(target) }
        p.tensors.append((keyPrefix + family.sequenceClassificationName(s.name), s))
      } else if family.isHeadTensor(s.name) {
        let top = String(s.name.prefix { $0 != "." })
        if !p.modulesToSave.contains(top) { p.modulesToSave.append(top) }
        p.tensors.append((keyPrefix + s.name, s))
      }
    }
    return p
  }

  /// Writes the LoRA adapter of `plan` with the model's values into `folder` (which exists).
  public static func writeLoRA(_ plan: Plan, model: EncoderModel, baseModel: String, into folder: URL) throws {
    guard let lora = model.layout.lora else { throw PETLError("writeLoRA: the model has no LoRA adapters") }
    try writeTensors(plan, model: model, into: folder)
    let config: [String: Any] = [
      "alpha_pattern": [String: Any](), "auto_mapping": NSNull(), "base_model_name_or_path": baseModel,
      "bias": "none", "exclude_modules": NSNull(), "fan_in_fan_out": false, "inference_mode": true,
      "init_lora_weights": true, "layers_pattern": NSNull(), "layers_to_transform": NSNull(),
      "lora_alpha": lora.alpha, "lora_dropout": lora.dropout, "modules_to_save": plan.modulesToSave,
      "peft_type": "LORA", "peft_version": peftVersion, "r": lora.rank, "rank_pattern": [String: Any](),
      "revision": NSNull(), "target_modules": plan.targetModules, "task_type": "SEQ_CLS",
      "use_dora": false, "use_rslora": false,
    ]
    try writeConfig(config, into: folder)
  }
}

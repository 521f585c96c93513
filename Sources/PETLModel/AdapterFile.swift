import Foundation
import PETLSupport

/// An adapter file: the trainable parameters of a cell, alone, as safetensors with HuggingFace names
/// (`encoder.layer.3.output.LayerNorm.weight`, `classifier.weight`, ...). The metadata records the
/// trainable set so a reader knows what the file is. Tensors that train only in part (the `random`
/// control) are stored whole. The head always travels with the adapter: a reloaded adapter without
/// its head would be a different model.
public enum AdapterFile {
  /// Writes the tensors the plan trains (wholly or in part), with `metadata` (the trainable set's
  /// description, from the caller).
  public static func save(_ model: EncoderModel, plan: GradientPlan, to url: URL, metadata: [String: String]) throws {
    let layout = model.layout
    var tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] = []
    for (i, s) in layout.slots.enumerated() where plan.trains(i) {
      tensors.append((s.name, s.shape, UnsafeBufferPointer(start: model.pointer(s), count: s.count)))
    }
    var meta = metadata
    meta["format"] = "pt"
    meta["swift_petl.trainable_parameters"] = String(plan.count)
    meta["swift_petl.num_labels"] = String(model.dims.numLabels)
    try SafeTensors.write(to: url, tensors: tensors, metadata: meta)
  }

  /// Loads every tensor of the file over the model's parameters; returns the model's names of the
  /// tensors loaded (the family's checkpoint prefix, if the file has it, dropped). A name the model
  /// does not have or a shape that differs is an error naming the file and tensor.
  @discardableResult
  public static func load(_ url: URL, into model: EncoderModel) throws -> [String] {
    guard FileManager.default.fileExists(atPath: url.path) else { throw PETLError("\(url.path): no such adapter file") }
    let st = try SafeTensors.open(url)
    let prefix = model.dims.family.checkpointPrefix
    var loaded: [String] = []
    for name in st.names {
      let key = name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : name
      guard let slot = model.layout.slot(named: key), let info = st.info(name) else {
        throw PETLError("\(url.path): tensor '\(shown(name))' is not a parameter of this model")
      }
      guard info.shape == slot.shape else {
        throw PETLError("\(url.path): tensor '\(shown(name))' has shape \(info.shape), the model's is \(slot.shape)")
      }
      try st.copyFloats(name, into: UnsafeMutableBufferPointer(start: model.pointer(slot), count: slot.count))
      loaded.append(key)
    }
    return loaded
  }
}

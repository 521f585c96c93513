import Foundation
import XCTest
@testable import PETLModel
@testable import PETLTraining

/// A LoRA cell's adapter file back into a model (`AdapterFile.apply`), out as PEFT's LoRA adapter
/// (the keys, shapes and config fields `PeftModel.save_pretrained` wrote for the same adapters, in the
/// committed fixtures), and merged into the weights (the merged model's logits are PEFT's within 1e-4).
/// reference/lora_export_check.py loads a real export with PEFT itself (docs/lora.md).
final class LoRAExportTests: XCTestCase {
  func testAdapterRoundTripPEFTLayoutAndMerge() throws {
    for key in ["bert", "electra", "distilbert", "roberta"] {
      for c in try LoRAFixtures.cases(key) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petl-lora-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // adapter file -> a fresh base model: the same slab
        let file = dir.appendingPathComponent("adapter.safetensors")
        try AdapterFile.save(c.model, trainable: c.set, to: file)
        let (applied, loaded) = try AdapterFile.apply(file, to: c.base)
        XCTAssertEqual(applied.layout.lora, c.model.layout.lora, c.name)
        XCTAssertEqual(Set(loaded), Set(c.set.plan.trainableNames), c.name)
        XCTAssertEqual(applied.snapshot(), c.model.snapshot(), c.name)

        // PEFT's adapter layout
        let plan = try PEFTExport.loraPlan(layout: applied.layout, adapterTensors: loaded, source: c.name)
        try PEFTExport.writeLoRA(plan, model: applied, baseModel: "/base", into: dir)
        let saved = (c.info["peft_saved"] as! [String: Any])
        let peftTensors = saved["tensors"] as! [String: [Int]]
        let ours = try SafeTensors.open(dir.appendingPathComponent("adapter_model.safetensors"))
        XCTAssertEqual(Set(ours.names), Set(peftTensors.keys), c.name)
        for (name, shape) in peftTensors { XCTAssertEqual(ours.info(name)?.shape, shape, "\(c.name): \(name)") }
        for (name, slot) in plan.tensors {
          XCTAssertEqual(try ours.floats(name), Array(UnsafeBufferPointer(start: applied.pointer(slot), count: slot.count)), name)
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        let peftConfig = saved["adapter_config"] as! [String: Any]
        for field in ["peft_type", "task_type", "r", "bias", "use_dora", "use_rslora", "fan_in_fan_out"] {
          XCTAssertEqual("\(config[field]!)", "\(peftConfig[field]!)", "\(c.name): \(field)")
        }
        XCTAssertEqual(config["lora_alpha"] as? Double, peftConfig["lora_alpha"] as? Double, c.name)
        XCTAssertEqual(config["lora_dropout"] as? Double, 0, c.name)
        XCTAssertTrue(Set(peftConfig["modules_to_save"] as! [String]).isSuperset(of: config["modules_to_save"] as! [String]), c.name)
        XCTAssertEqual(Set(config["modules_to_save"] as! [String]), Set(c.info["modules_to_save"] as! [String]), c.name)
        // every module PEFT adapted, by its full path (what PEFT's keys name)
        let adapted = Set(peftTensors.keys.filter { $0.hasSuffix(".lora_A.weight") }.map {
          String($0.dropFirst("base_model.model.".count).dropLast(".lora_A.weight".count))
        })
        XCTAssertEqual(Set(config["target_modules"] as! [String]), adapted, c.name)

        // merged: W + (alpha/R)·B·A in a plain model gives PEFT's logits
        let merged = applied.mergedLoRA()
        let ws = Workspace(dims: merged.dims)
        merged.forward(c.batch, ws: ws, training: false)
        let ref = try c.reference.floats("\(c.name.split(separator: "/")[1]).logits")
        let worst = zip(ws.outputs(batch: c.batch.count), ref).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 1e-4, "\(c.name): merged logits max |Δ| \(worst)")
      }
    }
  }

  /// A module adapter is not LoRA; an adapter file whose adapters the model cannot hold is one error.
  func testAdapterFileErrors() throws {
    let c = try LoRAFixtures.cases("bert")[0]
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("petl-lora-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let ln = try TrainableSet(modules: [.layernorm], layers: .all, layout: c.base.layout)
    let plain = dir.appendingPathComponent("ln.safetensors")
    try AdapterFile.save(c.base, trainable: ln, to: plain)
    XCTAssertNil(try AdapterFile.loraSpec(plain, layout: c.base.layout))
    XCTAssertThrowsError(try PEFTExport.loraPlan(layout: c.base.layout, adapterTensors: [], source: "x"))
    // no alpha in the metadata: refused, naming the file
    let bare = dir.appendingPathComponent("bare.safetensors")
    try AdapterFile.save(c.model, plan: c.set.plan, to: bare, metadata: [:])
    XCTAssertThrowsError(try AdapterFile.apply(bare, to: c.base)) { XCTAssertTrue("\($0)".contains("bare.safetensors")) }
  }
}

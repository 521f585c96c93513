import Foundation
import PETLSupport

/// A model (base weights with an adapter applied) as a transformers folder that
/// `AutoModelForSequenceClassification.from_pretrained` loads with no missing or unexpected key:
/// `model.safetensors` under the family's `*ForSequenceClassification` names
/// (`EncoderFamily.sequenceClassificationName`), `config.json` (`ExportConfig`) and the tokenizer
/// files the model folder has.
public enum SequenceClassificationExport {
  /// The tokenizer files a hub folder may hold, copied when present: `AutoTokenizer` reads them
  /// (with config.json's `model_type` when there is no tokenizer_config.json).
  public static let tokenizerFiles = ["vocab.txt", "vocab.json", "merges.txt", "tokenizer.json",
                                      "tokenizer_config.json", "special_tokens_map.json"]

  /// What was written.
  public struct Written: Sendable {
    public var tensors: Int
    public var tokenizerFiles: [String]
  }

  /// Writes the three parts into `folder` (which exists). `metadata` goes into model.safetensors'
  /// header beside `format: pt` (transformers refuses a file without it).
  public static func write(_ model: EncoderModel, modelDirectory: URL, labels: ExportLabels,
                           into folder: URL, metadata: [String: String] = [:]) throws -> Written {
    let family = model.dims.family
    guard labels.count == model.dims.numLabels else {
      throw PETLError("the model's head has \(model.dims.numLabels) outputs, the labels \(labels.count) (\(shown(labels.names.joined(separator: ", "), limit: 120)))")
    }
    let tensors = model.layout.slots.map { s in
      (name: family.sequenceClassificationName(s.name), shape: s.shape,
       values: UnsafeBufferPointer(start: model.pointer(s), count: s.count))
    }
    var meta = metadata
    meta["format"] = "pt"
    try SafeTensors.write(to: folder.appendingPathComponent("model.safetensors"), tensors: tensors, metadata: meta)

    let configURL = modelDirectory.appendingPathComponent("config.json")
    let original: Data
    do { original = try Data(contentsOf: configURL) } catch {
      throw PETLError("\(configURL.path): cannot read file (\(error.localizedDescription))")
    }
    let config = try ExportConfig.make(from: original, path: configURL.path, family: family, labels: labels)
    try write(config, to: folder.appendingPathComponent("config.json"))

    var copied: [String] = []
    for name in tokenizerFiles {
      let from = modelDirectory.appendingPathComponent(name)
      guard FileManager.default.fileExists(atPath: from.path) else { continue }
      do { try FileManager.default.copyItem(at: from, to: folder.appendingPathComponent(name)) } catch {
        throw PETLError("\(from.path): cannot copy into \(folder.path) (\(error.localizedDescription))")
      }
      copied.append(name)
    }
    return Written(tensors: tensors.count, tokenizerFiles: copied)
  }

  static func write(_ data: Data, to url: URL) throws {
    do { try data.write(to: url) } catch {
      throw PETLError("\(url.path): cannot write (\(error.localizedDescription))")
    }
  }
}

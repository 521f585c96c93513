import Foundation
import PETLModel
import PETLTraining
import PETLSupport

/// Weight magnitudes per module type and layer: the paper ties LayerNorm's success to the large
/// magnitude of its gains, so the study shows them beside every other module. With adapters it also
/// shows how far fine-tuning moved each module, relative to the module's size.
public struct Magnitudes {
  public struct Row: Sendable {
    public var module: String
    public var layer: Int?
    /// weight, bias, gamma (LayerNorm weight), beta (LayerNorm bias) or table (embeddings).
    public var part: String
    public var count: Int
    public var meanAbs: Double
    public var rms: Double
    public var maxAbs: Double
    /// Per adapter: ‖after − before‖₂ / ‖before‖₂ over this tensor group (nil when the adapter does
    /// not touch it).
    public var moved: [Double?]
  }

  public let rows: [Row]
  public let adapterNames: [String]

  /// Statistics of every tensor group (module, layer, part) of `base`; `tuned` are the base model with
  /// an adapter loaded on top, in the order of `adapterNames`.
  public init(base: EncoderModel, tuned: [(name: String, model: EncoderModel, touched: Set<String>)] = []) {
    var rows: [Row] = []
    for s in base.layout.slots where s.module != .classifier {
      let p = base.pointer(s)
      var sumAbs = 0.0, sumSq = 0.0, mx = 0.0
      for i in 0..<s.count { let v = Double(p[i]); sumAbs += abs(v); sumSq += v * v; mx = max(mx, abs(v)) }
      let moved: [Double?] = tuned.map { t in
        guard t.touched.contains(s.name) else { return nil }
        let q = t.model.pointer(s)
        var d = 0.0
        for i in 0..<s.count { let x = Double(q[i]) - Double(p[i]); d += x * x }
        return sumSq > 0 ? (d / sumSq).squareRoot() : nil
      }
      let part = s.module == .embeddings && s.role == .table ? String(s.name.split(separator: ".")[1]) : s.role.rawValue
      rows.append(Row(module: s.module.rawValue, layer: s.layer, part: part, count: s.count,
                      meanAbs: sumAbs / Double(s.count), rms: (sumSq / Double(s.count)).squareRoot(), maxAbs: mx, moved: moved))
    }
    self.rows = rows
    self.adapterNames = tuned.map(\.name)
  }

  public func csv() -> String {
    var out = "module,layer,part,count,mean_abs,rms,max_abs" + adapterNames.map { ",moved_\($0)" }.joined() + "\n"
    for r in rows {
      let cells = [r.module, r.layer.map(String.init) ?? "", r.part, String(r.count),
                   String(format: "%.6g", r.meanAbs), String(format: "%.6g", r.rms), String(format: "%.6g", r.maxAbs)]
        + r.moved.map { $0.map { String(format: "%.6g", $0) } ?? "" }
      out += cells.joined(separator: ",") + "\n"
    }
    return out
  }

  /// Module type x layer heatmap of the mean |value| of weights and LayerNorm gains, on a log scale.
  public func svg(layers: Int) -> String {
    let kinds = ModuleKind.perLayer
    let names = kinds.map { $0.isLayerNorm ? "\($0.rawValue) gain" : "\($0.rawValue) weight" }
    let values: [[Double?]] = kinds.map { k in
      (0..<layers).map { l in
        rows.first { $0.module == k.rawValue && $0.layer == l && ($0.part == "weight" || $0.part == "gamma") }
          .map { log10($0.meanAbs) }
      }
    }
    return SVGHeatmap.render(title: "Mean |weight| by module and layer (log colour scale)", rows: names,
                             columns: (0..<layers).map { "layer \($0)" }, values: values,
                             label: { String(format: "%.3g", pow(10, $0)) })
  }

  /// Markdown section for the report: per module type, mean |weight| (gain for LayerNorms) and bias
  /// averaged over layers, and the ratio to the query weights.
  public func markdown() -> String {
    func mean(_ pred: (Row) -> Bool) -> Double {
      let xs = rows.filter(pred).map(\.meanAbs)
      return xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count)
    }
    let gains = mean { $0.part == "gamma" && $0.layer != nil }
    let matrices = mean { $0.part == "weight" && $0.layer != nil }
    var lines = ["## Weight magnitudes", "",
                 "Mean |value| per module type, averaged over layers (LayerNorms: gain and bias). "
                 + String(format: "Encoder LayerNorm gains average %.3g, %.1fx the mean |entry| of the encoder's weight matrices (%.3g); ", gains, matrices > 0 ? gains / matrices : 0, matrices)
                 + "the paper links LayerNorm's success to this magnitude.", "",
                 "| Module | weight / gain | bias / beta |" + adapterNames.map { " moved (\($0)) |" }.joined(),
                 "|---|---:|---:|" + adapterNames.map { _ in "---:|" }.joined()]
    for k in ModuleKind.allCases where k != .classifier {
      let rs = rows.filter { $0.module == k.rawValue }
      func avg(_ parts: Set<String>) -> String {
        let xs = rs.filter { parts.contains($0.part) }.map(\.meanAbs)
        return xs.isEmpty ? "" : String(format: "%.4g", xs.reduce(0, +) / Double(xs.count))
      }
      let moved = adapterNames.indices.map { a -> String in
        let xs = rs.compactMap { $0.moved[a] }
        return xs.isEmpty ? "" : String(format: "%.3g", xs.reduce(0, +) / Double(xs.count))
      }
      let weights: Set<String> = k == .embeddings ? ["word_embeddings"] : ["weight", "gamma"]
      lines.append("| \(k.rawValue) | \(avg(weights)) | \(avg(["bias", "beta"])) |"
                   + moved.map { " \($0) |" }.joined())
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// Writes magnitudes.csv, magnitudes.svg and magnitudes.md into `folder`.
  public func write(to folder: URL, layers: Int) throws -> [URL] {
    do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
      throw PETLError("\(folder.path): cannot create (\(error.localizedDescription))")
    }
    return try [("magnitudes.csv", csv()), ("magnitudes.svg", svg(layers: layers)), ("magnitudes.md", markdown())].map { name, text in
      let url = folder.appendingPathComponent(name)
      do { try Data(text.utf8).write(to: url, options: .atomic) } catch {
        throw PETLError("\(url.path): cannot write (\(error.localizedDescription))")
      }
      return url
    }
  }
}

extension Magnitudes {
  /// The pretrained model's magnitudes, and how far each adapter (a name and its file) moved them:
  /// each adapter is loaded over its own copy of the pretrained model, with a head of its label count.
  public init(modelDirectory: URL, config: EncoderConfig? = nil, adapters: [(name: String, url: URL)]) throws {
    let (base, _) = try EncoderModel.load(directory: modelDirectory, config: config, numLabels: 2)
    var tuned: [(name: String, model: EncoderModel, touched: Set<String>)] = []
    for adapter in adapters {
      let labels = (try SafeTensors.open(adapter.url)).info("classifier.weight")?.shape.first ?? 2
      let (m, _) = try EncoderModel.load(directory: modelDirectory, config: config, numLabels: Int(labels))
      tuned.append((adapter.name, m, Set(try AdapterFile.load(adapter.url, into: m))))
    }
    self.init(base: base, tuned: tuned)
  }

  /// After a grid: the adapters it saved (`grid --save-adapters`, files named by cell id) of its
  /// module-wise cells, full fine-tuning aside (it moves everything).
  public static func adapters(of journal: Journal, in folder: URL) -> [(name: String, url: URL)] {
    journal.records.compactMap { r in
      guard r.result.status == .ok, r.spec.layers == .all, r.spec.modules != [.full] else { return nil }
      let url = folder.appendingPathComponent("\(r.specHash).safetensors")
      guard FileManager.default.fileExists(atPath: url.path) else { return nil }
      return (r.spec.label.replacingOccurrences(of: " ", with: "_"), url)
    }
  }
}

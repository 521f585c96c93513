import Foundation
import PETLSupport

/// How a family's config.json names the sizes (for messages): DistilBERT's `dim`, `n_layers`,
/// `hidden_dim`; ELECTRA's `embedding_size`.
public struct SizeKeys: Sendable {
  public let hidden, layers, intermediate, embedding: String

  public static func of(_ family: EncoderFamily) -> SizeKeys {
    switch family {
    case .distilbert: return SizeKeys(hidden: "dim", layers: "n_layers", intermediate: "hidden_dim", embedding: "dim")
    case .electra: return SizeKeys(hidden: "hidden_size", layers: "num_hidden_layers", intermediate: "intermediate_size",
                                   embedding: "embedding_size")
    case .bert, .roberta: return SizeKeys(hidden: "hidden_size", layers: "num_hidden_layers",
                                          intermediate: "intermediate_size", embedding: "hidden_size")
    }
  }
}

/// What a model of these sizes needs, computed with overflow checks before anything is allocated:
/// `ParameterLayout` and the slab trust these counts, so sizes (from config.json or a task's label
/// count) whose products overflow, or that ask for more memory than the machine has, are refused
/// here in one line naming the sizes at fault.
extension ModelDims {
  /// The slab's tensors grouped as products of sizes, each with how a message names it.
  private var products: [(what: String, factors: [Int])] {
    let k = SizeKeys.of(family)
    let H = hidden, I = intermediate, E = embedding, L = layers
    // x + 1, saturating: Int.max as a factor then overflows the product, which is reported.
    func inc(_ x: Int) -> Int { x == .max ? .max : x + 1 }
    var t: [(String, [Int])] = [
      ("vocab_size \(vocabSize) x \(k.embedding) \(E) (word embeddings)", [vocabSize, E]),
      ("max_position_embeddings \(maxPositions) x \(k.embedding) \(E) (position embeddings)", [maxPositions, E]),
      ("\(k.embedding) \(E) (embedding LayerNorm)", [2, E]),
      ("\(k.layers) \(L) x \(k.hidden) \(H) x \(k.hidden) \(H) (attention)", [L, 4, H, inc(H)]),
      ("\(k.layers) \(L) x \(k.intermediate) \(I) x \(k.hidden) \(H) (feed-forward in)", [L, I, inc(H)]),
      ("\(k.layers) \(L) x \(k.hidden) \(H) x \(k.intermediate) \(I) (feed-forward out)", [L, H, inc(I)]),
      ("\(k.layers) \(L) x \(k.hidden) \(H) (LayerNorms)", [L, 4, H]),
      ("\(k.hidden) \(H) x \(k.hidden) \(H) (head dense layer)", [H, inc(H)]),
      ("\(numLabels) labels x \(k.hidden) \(H) (classifier)", [max(numLabels, 0), inc(H)]),
    ]
    if family.hasTokenTypeTable { t.append(("type_vocab_size \(typeVocab) x \(k.embedding) \(E) (token types)", [typeVocab, E])) }
    if projectsEmbeddings { t.append(("\(k.hidden) \(H) x \(k.embedding) \(E) (embeddings_project)", [H, inc(E)])) }
    return t
  }

  /// Bytes of bookkeeping per layer beside its parameters (slots, names, resolved offsets): an
  /// upper estimate, so that a config of a billion one-wide layers is refused too.
  static let bytesPerLayerRecord = 4096

  /// The parameter count (at least `ParameterLayout(dims:).count`), nil when it overflows an Int.
  public var checkedParameterCount: Int? { try? totals().count }

  private func totals() throws -> (count: Int, largest: String) {
    var total = 0
    var largest = ("", -1)
    for (what, factors) in products {
      var product = 1
      for f in factors {
        let (p, overflow) = product.multipliedReportingOverflow(by: max(f, 0))
        guard !overflow else { throw PETLError("\(what) overflows: no machine can hold it") }
        product = p
      }
      let (sum, overflow) = total.addingReportingOverflow(product)
      guard !overflow else { throw PETLError("\(what) with the other tensors overflows: no machine can hold it") }
      total = sum
      if product > largest.1 { largest = (what, product) }
    }
    return (total, largest.0)
  }

  /// Refuses sizes whose parameters overflow or do not fit this machine's memory; `source` starts
  /// the message (config.json's path, or what set the label count).
  public func checkFits(in source: String, memory: UInt64 = ProcessInfo.processInfo.physicalMemory) throws {
    let (count, largest): (Int, String)
    do { (count, largest) = try totals() } catch let e as PETLError { throw PETLError("\(source): \(e.message)") }
    let (floatBytes, o1) = count.multipliedReportingOverflow(by: MemoryLayout<Float>.size)
    let (records, o2) = max(layers, 0).multipliedReportingOverflow(by: Self.bytesPerLayerRecord)
    let (bytes, o3) = floatBytes.addingReportingOverflow(records)
    guard !o1, !o2, !o3, UInt64(bytes) <= memory else {
      let need = o1 || o2 || o3 ? "more than 2^63 bytes" : formatBytes(UInt64(bytes))
      throw PETLError("\(source): the parameters need \(need), more than this machine's \(formatBytes(memory)) of memory "
        + "(largest: \(largest))")
    }
  }
}

/// Bytes for a message: "1.5 GB", "820 MB", "12 KB".
func formatBytes(_ n: UInt64) -> String {
  let x = Double(n)
  if x >= 1e11 { return String(format: "%.0f GB", x / 1e9) }
  if x >= 1e9 { return String(format: "%.1f GB", x / 1e9) }
  if x >= 1e6 { return String(format: "%.0f MB", x / 1e6) }
  return String(format: "%.0f KB", x / 1e3)
}

import Foundation
import PETLKernels
import PETLSupport

/// The `tokenizer_config.json` keys transformers 5's `BertTokenizer` reads, read as it reads them
/// (Python's `json`, so the last of a repeated key wins; the flags are handed to the Rust
/// normaliser, which takes only true or false: `1`, `"true"` and null are refused there, and here).
/// Special tokens other than BERT's own are refused rather than ignored. Every key is optional.
struct BertTokenizerConfig {
  var doLowerCase = true
  var tokenizeChineseChars = true
  /// nil: follows `doLowerCase` (`strip_accents: null`, BERT's default).
  var stripAccents: Bool? = nil

  var normalizer: BertNormalizer {
    BertNormalizer(lowercase: doLowerCase, stripAccents: stripAccents, handleChineseChars: tokenizeChineseChars)
  }

  static let specialTokenKeys = ["unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                                 "cls_token": "[CLS]", "mask_token": "[MASK]"]

  /// The defaults when the file is absent.
  static func load(_ url: URL) throws -> BertTokenizerConfig {
    let path = url.path
    guard FileManager.default.fileExists(atPath: path) else { return BertTokenizerConfig() }
    guard let data = FileManager.default.contents(atPath: path) else { throw PETLError("\(path): cannot read file") }
    guard let json = try? JSONValue.parse([UInt8](data), python: true), case .object = json else {
      throw PETLError("\(path): not a valid JSON object")
    }
    func flag(_ key: String) throws -> Bool? {
      switch json[key] {
      case nil: return nil
      case .bool(let b)?: return b
      case _?: throw PETLError("\(path): \(key) must be true or false")
      }
    }
    var config = BertTokenizerConfig()
    config.doLowerCase = try flag("do_lower_case") ?? true
    config.tokenizeChineseChars = try flag("tokenize_chinese_chars") ?? true
    if case .null? = json["strip_accents"] { config.stripAccents = nil } else { config.stripAccents = try flag("strip_accents") }
    for (key, standard) in specialTokenKeys.sorted(by: { $0.key < $1.key }) {
      guard let v = json[key] else { continue }
      let content: String?
      switch v {
      case .string(let s): content = s
      case .object: if case .string(let s)? = v["content"] { content = s } else { content = nil }
      default: content = nil
      }
      guard let content else { throw PETLError("\(path): \(key) must be a string, got \(v.typeName)") }
      guard content.unicodeScalars.elementsEqual(standard.unicodeScalars) else {
        throw PETLError("\(path): \(key) '\(shown(content))' is not supported (BERT's is '\(standard)')")
      }
    }
    return config
  }
}

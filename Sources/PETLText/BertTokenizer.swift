import Foundation
import PETLModel
import PETLSupport

/// BERT's uncased WordPiece tokenizer, id-for-id equal to `AutoTokenizer.from_pretrained(model_dir)` in
/// transformers 5 (which is the `tokenizers` pipeline: special-token split, `BertNormalizer`,
/// `BertPreTokenizer`, `WordPiece`, BERT template). Immutable, so one instance can serve all threads.
public struct BertTokenizer: Tokenizer {
  /// The special tokens BERT checkpoints declare. HuggingFace matches them in the raw text before any
  /// normalisation, so a literal "[SEP]" in a sentence is the separator token while "[sep]" is not.
  public static let specialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

  private let vocabulary: Vocabulary
  private let normalizer: BertNormalizer
  private let wordPiece: WordPiece
  /// Special tokens present in the vocabulary, longest first so the leftmost-longest match wins.
  private let specials: [(text: [Unicode.Scalar], id: Int32)]
  public let padId: Int32
  public let unkId: Int32
  public let clsId: Int32
  public let sepId: Int32
  public let doLowerCase: Bool

  /// Number of ids (lines of `vocab.txt`): the embedding table's row count.
  public var vocabularySize: Int { vocabulary.tokens.count }

  /// Loads `vocab.txt` and, when present, `do_lower_case` from `tokenizer_config.json` (default true).
  /// When the folder has a `config.json` (a model folder, not a tokenizer alone), the vocabulary must
  /// fit its `vocab_size`: every id the tokenizer emits indexes the word-embedding table.
  public init(modelDirectory: URL) throws {
    let configURL = modelDirectory.appendingPathComponent("config.json")
    let config = FileManager.default.fileExists(atPath: configURL.path) ? try EncoderConfig.load(configURL) : nil
    try self.init(modelDirectory: modelDirectory, config: config)
  }

  /// As `init(modelDirectory:)`, with the model's config already loaded (nil: no check of the ids).
  public init(modelDirectory: URL, config: EncoderConfig?) throws {
    let vocabURL = modelDirectory.appendingPathComponent("vocab.txt")
    let vocabulary = try Vocabulary.load(vocabURL)
    try config?.checkVocabulary(tokens: vocabulary.tokens.count, file: vocabURL.path)
    let doLowerCase = try BertTokenizer.readDoLowerCase(modelDirectory.appendingPathComponent("tokenizer_config.json"))
    try self.init(vocabulary: vocabulary, doLowerCase: doLowerCase, source: vocabURL.path)
  }

  /// A tokenizer over `vocabulary` (id = index). It must contain `[UNK]`, `[CLS]`, `[SEP]` and `[PAD]`.
  public init(vocabulary: [String], doLowerCase: Bool) throws {
    try self.init(vocabulary: Vocabulary(tokens: vocabulary), doLowerCase: doLowerCase, source: "vocabulary")
  }

  private init(vocabulary: Vocabulary, doLowerCase: Bool, source: String) throws {
    func required(_ token: String) throws -> Int32 {
      guard let id = vocabulary.id(of: token) else {
        throw PETLError("\(source): vocabulary has no \(token) token")
      }
      return id
    }
    unkId = try required("[UNK]")
    clsId = try required("[CLS]")
    sepId = try required("[SEP]")
    padId = try required("[PAD]")
    self.vocabulary = vocabulary
    self.doLowerCase = doLowerCase
    normalizer = BertNormalizer(lowercase: doLowerCase)
    wordPiece = WordPiece(vocabulary: vocabulary, unkId: unkId)
    specials = BertTokenizer.specialTokens
      .compactMap { t in vocabulary.id(of: t).map { (Array(t.unicodeScalars), $0) } }
      .sorted { $0.text.count > $1.text.count }
  }

  private static func readDoLowerCase(_ url: URL) throws -> Bool {
    guard FileManager.default.fileExists(atPath: url.path) else { return true }
    guard let data = try? Data(contentsOf: url),
          let object = try? JSONSerialization.jsonObject(with: data),
          let config = object as? [String: Any]
    else { throw PETLError("\(url.path): not a valid JSON object") }
    guard let value = config["do_lower_case"] else { return true }
    guard let flag = value as? Bool else {
      throw PETLError("\(url.path): do_lower_case must be true or false")
    }
    return flag
  }

  /// `[CLS] a [SEP]`: 2; `[CLS] a [SEP] b [SEP]`: 3.
  public func specialTokenCount(pair: Bool) -> Int { pair ? 3 : 2 }

  /// The vocabulary entry of `id` (which must be below `vocabularySize`).
  public func token(for id: Int32) -> String { vocabulary.tokens[Int(id)] }

  /// Token ids of `text` without special tokens around it.
  public func ids(_ text: String) -> [Int32] {
    var ids: [Int32] = []
    var utf8: [UInt8] = [], offsets: [Int] = []
    let scalars = text.unicodeScalars
    var segmentStart = scalars.startIndex
    var i = scalars.startIndex
    while i < scalars.endIndex {
      if let (id, end) = special(at: i, in: scalars) {
        appendWords(scalars[segmentStart..<i], to: &ids, utf8: &utf8, offsets: &offsets)
        ids.append(id)
        i = end
        segmentStart = end
      } else {
        scalars.formIndex(after: &i)
      }
    }
    appendWords(scalars[segmentStart..<scalars.endIndex], to: &ids, utf8: &utf8, offsets: &offsets)
    return ids
  }

  /// `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, truncated longest-first to `maxLength` as HuggingFace's
  /// `truncation=True, max_length=maxLength`. An empty `b` is still a pair (as in a batched HF call).
  /// `maxLength` must leave room for the special tokens (2, or 3 with `b`).
  public func encode(_ a: String, _ b: String? = nil, maxLength: Int = 128) -> Encoding {
    var first = ids(a)
    guard let b else {
      precondition(maxLength >= 2, "maxLength \(maxLength) leaves no room for [CLS] and [SEP]")
      if first.count > maxLength - 2 { first.removeSubrange((maxLength - 2)...) }
      return Encoding(inputIds: [clsId] + first + [sepId],
                      tokenTypeIds: [Int32](repeating: 0, count: first.count + 2))
    }
    precondition(maxLength >= 3, "maxLength \(maxLength) leaves no room for [CLS] and two [SEP]")
    var second = ids(b)
    let (n1, n2) = longestFirstLengths(first.count, second.count, budget: maxLength - 3)
    first.removeSubrange(n1...)
    second.removeSubrange(n2...)
    var inputIds: [Int32] = [clsId]
    inputIds.reserveCapacity(n1 + n2 + 3)
    inputIds += first; inputIds.append(sepId); inputIds += second; inputIds.append(sepId)
    return Encoding(inputIds: inputIds,
                    tokenTypeIds: [Int32](repeating: 0, count: n1 + 2) + [Int32](repeating: 1, count: n2 + 1))
  }

  /// The special token starting at `i`, if any, and the index after it.
  private func special(at i: String.UnicodeScalarView.Index, in scalars: String.UnicodeScalarView)
    -> (Int32, String.UnicodeScalarView.Index)?
  {
    guard scalars[i] == "[" else { return nil }
    for (text, id) in specials {
      var j = i
      var matched = true
      for s in text {
        guard j < scalars.endIndex, scalars[j] == s else { matched = false; break }
        scalars.formIndex(after: &j)
      }
      if matched { return (id, j) }
    }
    return nil
  }

  /// Normalizes a stretch of text without special tokens, splits it into words (whitespace removed,
  /// each punctuation character its own word) and appends their WordPiece ids.
  private func appendWords(
    _ text: Substring.UnicodeScalarView, to ids: inout [Int32],
    utf8: inout [UInt8], offsets: inout [Int]
  ) {
    if text.isEmpty { return }
    let normalized = normalizer.normalize(text)
    var wordStart = 0
    for (k, s) in normalized.enumerated() {
      if isWhitespace(s) {
        if wordStart < k {
          wordPiece.append(normalized[wordStart..<k], to: &ids, utf8: &utf8, offsets: &offsets)
        }
        wordStart = k + 1
      } else if isPunctuation(s) {
        if wordStart < k {
          wordPiece.append(normalized[wordStart..<k], to: &ids, utf8: &utf8, offsets: &offsets)
        }
        wordPiece.append(normalized[k...k], to: &ids, utf8: &utf8, offsets: &offsets)
        wordStart = k + 1
      }
    }
    if wordStart < normalized.count {
      wordPiece.append(normalized[wordStart...], to: &ids, utf8: &utf8, offsets: &offsets)
    }
  }
}

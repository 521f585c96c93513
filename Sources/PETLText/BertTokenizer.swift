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
  /// Special tokens present in the vocabulary (UTF-8), longest first so the leftmost-longest match wins.
  private let specials: [(text: [UInt8], id: Int32)]
  public let padId: Int32
  public let unkId: Int32
  public let clsId: Int32
  public let sepId: Int32
  public let doLowerCase: Bool

  /// Number of ids (lines of `vocab.txt`): the embedding table's row count.
  public var vocabularySize: Int { vocabulary.tokens.count }

  /// Loads `vocab.txt` and, when present, `tokenizer_config.json` (`BertTokenizerConfig`). When the
  /// folder has a `config.json` (a model folder, not a tokenizer alone), the vocabulary must fit its
  /// `vocab_size`: every id the tokenizer emits indexes the word-embedding table.
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
    let options = try BertTokenizerConfig.load(modelDirectory.appendingPathComponent("tokenizer_config.json"))
    try self.init(vocabulary: vocabulary, normalizer: options.normalizer, source: vocabURL.path)
  }

  /// A tokenizer over `vocabulary` (id = index). It must contain `[UNK]`, `[CLS]`, `[SEP]` and `[PAD]`.
  public init(vocabulary: [String], doLowerCase: Bool) throws {
    try self.init(vocabulary: Vocabulary(tokens: vocabulary), normalizer: BertNormalizer(lowercase: doLowerCase),
                  source: "vocabulary")
  }

  private init(vocabulary: Vocabulary, normalizer: BertNormalizer, source: String) throws {
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
    self.doLowerCase = normalizer.lowercase
    self.normalizer = normalizer
    wordPiece = WordPiece(vocabulary: vocabulary, unkId: unkId)
    specials = BertTokenizer.specialTokens
      .compactMap { t in vocabulary.id(of: t).map { (Array(t.utf8), $0) } }
      .sorted { $0.text.count > $1.text.count }
  }

  /// `[CLS] a [SEP]`: 2; `[CLS] a [SEP] b [SEP]`: 3.
  public func specialTokenCount(pair: Bool) -> Int { layout.count(pair: pair) }

  var layout: SpecialTokenLayout { SpecialTokenLayout(cls: clsId, sep: sepId, pairSeparators: 1, secondType: 1) }

  /// The vocabulary entry of `id` (which must be below `vocabularySize`).
  public func token(for id: Int32) -> String { vocabulary.tokens[Int(id)] }

  /// Token ids of `text` without special tokens around it.
  public func ids(_ text: String) -> [Int32] {
    var sink = TokenSink()
    tokenize(text, into: &sink)
    return sink.ids
  }

  /// `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` (token types 0, then 1 from `b`), truncated
  /// longest-first as HuggingFace's `truncation=True, max_length=maxLength` (`SpecialTokenLayout`).
  public func encode(_ a: String, _ b: String? = nil, maxLength: Int = 128) -> Encoding {
    layout.encode(a, b, maxLength: maxLength) { tokenize($0, into: &$1) }
  }

  /// The ids of `text` into `sink`: special tokens matched in the raw text, every stretch between
  /// them normalised, split into words and WordPiece'd a scalar at a time (`BertWordStream`).
  func tokenize(_ text: String, into sink: inout TokenSink) {
    var text = text
    text.withUTF8 { bytes in
      var stream = BertWordStream(normalizer: normalizer, wordPiece: wordPiece)
      var i = 0
      while i < bytes.count && !sink.done {
        if bytes[i] == UInt8(ascii: "["), let (id, end) = special(at: i, in: bytes) {
          stream.finish(into: &sink)
          if !sink.done { sink.append(id) }
          i = end
        } else {
          let (s, next) = scalar(in: bytes, at: i)
          stream.feed(s, into: &sink)
          i = next
        }
      }
      if !sink.done { stream.finish(into: &sink) }
    }
  }

  /// The special token starting at byte `i`, if any, and the byte after it.
  private func special(at i: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (Int32, Int)? {
    for (text, id) in specials where bytes.count - i >= text.count
      && text.indices.allSatisfy({ bytes[i + $0] == text[$0] }) {
      return (id, i + text.count)
    }
    return nil
  }
}

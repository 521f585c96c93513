import Foundation
import PETLSupport

/// RoBERTa's byte-level BPE tokenizer, id-for-id equal to transformers 5's `RobertaTokenizer` (the
/// `tokenizers` pipeline it builds): added tokens split out of the raw text, no normalizer, GPT-2's
/// pre-tokenization pattern on each remaining stretch, each piece's UTF-8 bytes merged by BPE, then
/// `<s> A </s>` or `<s> A </s></s> B </s>` with every token type 0. Immutable, so one instance can
/// serve all threads.
public struct ByteLevelBPETokenizer: Tokenizer {
  /// RoBERTa's special tokens. transformers registers all five as added tokens; each must be in the
  /// vocabulary, since one that is not would get an id past the embedding table.
  public static let specialTokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

  private let tokens: [String]
  private let model: BPEModel
  private let splitter: BPEAddedTokenSplitter
  public let addedTokens: [BPEAddedToken]
  /// `<s>`: starts every input (RoBERTa's CLS).
  public let clsId: Int32
  /// `</s>`: ends each text, and doubled between the texts of a pair.
  public let sepId: Int32
  public let padId: Int32
  /// Only a literal "<unk>" in the text produces it: RoBERTa's BPE has no unknown token, and a byte
  /// whose one-character token is missing from the vocabulary is dropped (as `tokenizers` does).
  public let unkId: Int32
  public let maskId: Int32

  /// Number of ids (entries of `vocab.json`): the embedding table's row count.
  public var vocabularySize: Int { tokens.count }

  /// Loads `vocab.json` and `merges.txt` from a RoBERTa hub folder. When the folder also has a
  /// `tokenizer.json`, its `added_tokens` flags are used (transformers reads them from there: in
  /// roberta-base `<mask>` strips the white space before it); without one, as
  /// `RobertaTokenizer(vocab=, merges=)`, no added token strips anything.
  public init(modelDirectory: URL) throws {
    let vocabURL = modelDirectory.appendingPathComponent("vocab.json")
    let mergesURL = modelDirectory.appendingPathComponent("merges.txt")
    let tokens = try BPEFiles.vocabulary(vocabURL)
    let idOf = Self.ids(of: tokens)
    let merges = try BPEFiles.merges(mergesURL)
    let tokenizerURL = modelDirectory.appendingPathComponent("tokenizer.json")
    var added = try Self.defaultAddedTokens(idOf, source: vocabURL.path)
    if FileManager.default.fileExists(atPath: tokenizerURL.path) {
      added = Self.overriding(added, with: try BPEFiles.addedTokens(tokenizerURL, vocabulary: idOf))
    }
    try self.init(tokens: tokens, idOf: idOf, merges: merges.pairs, addedTokens: added, source: vocabURL.path) {
      "\(mergesURL.path): line \(merges.lines[$0])"
    }
  }

  /// A tokenizer over `vocabulary` (id = index, tokens spelt in the byte-level alphabet, "Ġ" for a
  /// space) and `merges` in rank order. The vocabulary must hold RoBERTa's five special tokens;
  /// `addedTokens` replaces their flags (matched by content) or adds further tokens.
  public init(vocabulary: [String], merges: [(String, String)], addedTokens: [BPEAddedToken] = []) throws {
    let tokens = try BPEFiles.vocabulary(vocabulary.enumerated().map { ($1, Int32($0)) }, source: "vocabulary")
    let idOf = Self.ids(of: tokens)
    for token in addedTokens where idOf[Array(token.content.utf8)] != token.id {
      throw PETLError("vocabulary: added token \(token.content.debugDescription) does not have id \(token.id)")
    }
    let added = Self.overriding(try Self.defaultAddedTokens(idOf, source: "vocabulary"), with: addedTokens)
    try self.init(tokens: tokens, idOf: idOf, merges: merges, addedTokens: added, source: "vocabulary") {
      "merges[\($0)]"
    }
  }

  private init(tokens: [String], idOf: [[UInt8]: Int32], merges: [(String, String)], addedTokens: [BPEAddedToken],
               source: String, origin: (Int) -> String) throws {
    func required(_ token: String) -> Int32 { idOf[Array(token.utf8)]! }  // checked by defaultAddedTokens
    self.tokens = tokens
    model = try BPEModel(vocabulary: idOf, merges: merges, origin: origin)
    self.addedTokens = addedTokens
    splitter = BPEAddedTokenSplitter(addedTokens)
    clsId = required("<s>")
    padId = required("<pad>")
    sepId = required("</s>")
    unkId = required("<unk>")
    maskId = required("<mask>")
  }

  private static func ids(of tokens: [String]) -> [[UInt8]: Int32] {
    var idOf: [[UInt8]: Int32] = [:]
    idOf.reserveCapacity(tokens.count)
    for (id, token) in tokens.enumerated() { idOf[Array(token.utf8)] = Int32(id) }
    return idOf
  }

  /// The five special tokens as `RobertaTokenizer(vocab=, merges=)` registers them: not normalized,
  /// no stripping.
  private static func defaultAddedTokens(_ idOf: [[UInt8]: Int32], source: String) throws -> [BPEAddedToken] {
    try specialTokens.map { content in
      guard let id = idOf[Array(content.utf8)] else { throw PETLError("\(source): vocabulary has no \(content) token") }
      return BPEAddedToken(content: content, id: id)
    }
  }

  private static func overriding(_ base: [BPEAddedToken], with extra: [BPEAddedToken]) -> [BPEAddedToken] {
    var tokens = base
    for token in extra {
      if let k = tokens.firstIndex(where: { $0.content.utf8.elementsEqual(token.content.utf8) }) {
        tokens[k] = token
      } else {
        tokens.append(token)
      }
    }
    return tokens
  }

  /// `<s> a </s>`: 2; `<s> a </s></s> b </s>`: 4.
  public func specialTokenCount(pair: Bool) -> Int { layout.count(pair: pair) }

  var layout: SpecialTokenLayout { SpecialTokenLayout(cls: clsId, sep: sepId, pairSeparators: 2, secondType: 0) }

  /// The vocabulary entry of `id` in the byte-level alphabet ("Ġthe"), as `convert_ids_to_tokens`.
  public func token(for id: Int32) -> String { tokens[Int(id)] }

  /// Token ids of `text` without special tokens around it.
  public func ids(_ text: String) -> [Int32] {
    var sink = TokenSink()
    tokenize(text, into: &sink)
    return sink.ids
  }

  /// `<s> a </s>` or `<s> a </s></s> b </s>` (all token types 0: RoBERTa has one type), truncated
  /// longest-first as HuggingFace's `truncation=True, max_length=maxLength` (`SpecialTokenLayout`).
  public func encode(_ a: String, _ b: String? = nil, maxLength: Int = 128) -> Encoding {
    layout.encode(a, b, maxLength: maxLength) { tokenize($0, into: &$1) }
  }

  /// The ids of `text` into `sink`, walking its UTF-8 bytes: added tokens split out, each stretch
  /// between them cut into GPT-2's pieces, each piece merged by BPE; stops once the sink is done.
  func tokenize(_ text: String, into sink: inout TokenSink) {
    var text = text
    text.withUTF8 { bytes in
      var scratch = BPEScratch()
      let t = UTF8Text(bytes: bytes)
      splitter.forEachPiece(bytes) { piece in
        switch piece {
        case .token(let id):
          sink.append(id)
        case .text(let range):
          var i = range.lowerBound
          while i < range.upperBound && !sink.done {
            let end = BPEPreTokenizer.pieceEnd(t, from: i, end: range.upperBound)
            model.append(bytes, i..<end, to: &sink, scratch: &scratch)
            i = end
          }
        }
        return !sink.done
      }
    }
  }
}

/// What the data pipeline needs of a tokenizer: ids of a text, and the model input of one text or a
/// pair with the family's special tokens, truncated as HuggingFace truncates (`longest_first`).
/// WordPiece (BERT, ELECTRA, DistilBERT) and byte-level BPE (RoBERTa) conform.
public protocol Tokenizer: Sendable {
  /// Number of ids: every id the tokenizer emits is below it (the word-embedding table's rows).
  var vocabularySize: Int { get }
  /// Token ids of `text` without special tokens around it.
  func ids(_ text: String) -> [Int32]
  /// The vocabulary entry of `id` (which must be below `vocabularySize`).
  func token(for id: Int32) -> String
  /// The model input of `a`, or of the pair `a`, `b`, with at most `maxLength` ids. An empty `b` is
  /// still a pair (as in a batched HuggingFace call).
  func encode(_ a: String, _ b: String?, maxLength: Int) -> Encoding
  /// Special tokens the family adds around one text (`pair` false) or a pair: the shortest useful
  /// `maxLength` is one more.
  func specialTokenCount(pair: Bool) -> Int
}

extension Tokenizer {
  /// The model input of one text.
  public func encode(_ a: String, maxLength: Int) -> Encoding { encode(a, nil, maxLength: maxLength) }

  /// The token strings of `text` (no special tokens).
  public func tokenize(_ text: String) -> [String] { ids(text).map(token(for:)) }
}

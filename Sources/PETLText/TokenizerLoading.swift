import Foundation
import PETLModel

/// The tokenizer of a model folder: the family's (`config.model_type`) when the folder has a
/// config.json, else the files decide (`vocab.json` + `merges.txt`: byte-level BPE; `vocab.txt`:
/// WordPiece). With a config, every id the tokenizer can emit must index the word-embedding table.
public func loadTokenizer(modelDirectory: URL, config: EncoderConfig?) throws -> any Tokenizer {
  let kind: EncoderFamily.TokenizerKind
  if let config {
    kind = config.family.tokenizer
  } else {
    let bpe = ["vocab.json", "merges.txt"].allSatisfy {
      FileManager.default.fileExists(atPath: modelDirectory.appendingPathComponent($0).path)
    }
    kind = bpe ? .byteLevelBPE : .wordPiece
  }
  switch kind {
  case .wordPiece:
    return try BertTokenizer(modelDirectory: modelDirectory, config: config)
  case .byteLevelBPE:
    let tokenizer = try ByteLevelBPETokenizer(modelDirectory: modelDirectory)
    try config?.checkVocabulary(tokens: tokenizer.vocabularySize, file: modelDirectory.appendingPathComponent("vocab.json").path)
    return tokenizer
  }
}

import Foundation
import PETLSupport

/// Readers for the files of a RoBERTa hub folder. Every problem is one `PETLError` line that starts
/// with the file's path, never a trap.
enum BPEFiles {
  static func read(_ url: URL) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: url.path) else {
      throw PETLError("\(url.path): cannot read file")
    }
    return [UInt8](data)
  }

  static func parseJSON(_ url: URL) throws -> JSONValue {
    do { return try JSONValue.parse(try read(url)) } catch let error as PETLError where !error.message.hasPrefix(url.path) {
      throw PETLError("\(url.path): not valid JSON (\(error.message))")
    }
  }

  /// `vocab.json`: a JSON object from token to id. The ids must be exactly 0 to count-1, so that the
  /// vocabulary size is the embedding table's row count and every id has one token. (`tokenizers`
  /// skips entries whose value is not a number; here they are an error, as a file that holds them
  /// is not a vocabulary.) Returns the tokens by id.
  static func vocabulary(_ url: URL) throws -> [String] {
    guard case .object(let members) = try parseJSON(url) else {
      throw PETLError("\(url.path): expected a JSON object from token to id")
    }
    return try vocabulary(members.map { entry in
      guard let id = entry.value.nonNegativeInt32 else {
        throw PETLError("\(url.path): token \(shown(entry.key.debugDescription)) has \(entry.value.typeName) as its id, "
          + "not a non-negative integer")
      }
      return (entry.key, id)
    }, source: url.path)
  }

  /// Tokens by id from (token, id) entries; a token listed twice keeps its last id (as serde_json).
  /// Entries are checked in file order, so an error names the first offending entry.
  static func vocabulary(_ entries: [(String, Int32)], source: String) throws -> [String] {
    var last: [[UInt8]: Int] = [:]
    for (k, (token, _)) in entries.enumerated() { last[Array(token.utf8)] = k }
    var tokens = [String?](repeating: nil, count: last.count)
    for (k, (token, id)) in entries.enumerated() where last[Array(token.utf8)] == k {
      guard Int(id) < tokens.count else {
        throw PETLError("\(source): id \(id) of \(shown(token.debugDescription)) is not below the token count \(tokens.count) "
          + "(ids must be 0 to count-1)")
      }
      if let other = tokens[Int(id)] {
        throw PETLError("\(source): id \(id) is given to both \(shown(other.debugDescription)) and \(shown(token.debugDescription))")
      }
      tokens[Int(id)] = token
    }
    if tokens.isEmpty { throw PETLError("\(source): the vocabulary is empty") }
    return tokens.map { $0! }  // as many distinct ids below the count as slots: every slot is filled
  }

  /// `merges.txt`: one merge per line, the two tokens separated by one space, in rank order. Lines
  /// are read as Rust's `BufRead::lines` reads them (`\n` or `\r\n` ends a line) and lines starting
  /// with `#version` are skipped, as in `tokenizers`' `BPE::read_file`. Returns the merges and the
  /// 1-based line number of each.
  static func merges(_ url: URL) throws -> (pairs: [(String, String)], lines: [Int]) {
    let bytes = try read(url)
    guard let text = strictUTF8(bytes) else { throw PETLError("\(url.path): not valid UTF-8") }
    var pairs: [(String, String)] = [], lines: [Int] = []
    var rawLines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
    let endsWithNewline = rawLines.last?.isEmpty == true
    if endsWithNewline { rawLines.removeLast() }
    for (index, raw) in rawLines.enumerated() {
      let terminated = index < rawLines.count - 1 || endsWithNewline
      let line = terminated && raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw
      if line.starts(with: "#version".utf8) { continue }
      let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
      guard parts.count == 2 else {
        throw PETLError("\(url.path): line \(index + 1): expected two tokens separated by one space, "
          + "found \(shown(String(decoding: line, as: UTF8.self).debugDescription))")
      }
      pairs.append((String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self)))
      lines.append(index + 1)
    }
    return (pairs, lines)
  }

  /// The `added_tokens` of a `tokenizer.json` (roberta-base ships one: its `<mask>` has `lstrip`).
  /// transformers takes the added tokens' flags from it; each must be a `vocab.json` token with the
  /// same id, since an id beyond the vocabulary has no embedding row. `single_word` matching is not
  /// implemented and is refused rather than ignored.
  static func addedTokens(_ url: URL, vocabulary idOf: [[UInt8]: Int32]) throws -> [BPEAddedToken] {
    let json = try parseJSON(url)
    guard case .object = json else { throw PETLError("\(url.path): expected a JSON object") }
    guard let list = json["added_tokens"] else { return [] }
    guard case .array(let entries) = list else { throw PETLError("\(url.path): added_tokens is not an array") }
    return try entries.enumerated().map { (k, entry) in
      let what = "\(url.path): added_tokens[\(k)]"
      guard case .string(let content)? = entry["content"] else { throw PETLError("\(what) has no string content") }
      guard let id = entry["id"]?.nonNegativeInt32 else { throw PETLError("\(what) has no non-negative integer id") }
      func flag(_ name: String) throws -> Bool {
        switch entry[name] {
        case nil: return false
        case .bool(let value)?: return value
        case let other?: throw PETLError("\(what): \(name) is \(other.typeName), not true or false")
        }
      }
      if try flag("single_word") { throw PETLError("\(what) \(shown(content.debugDescription)): single_word tokens are not supported") }
      guard let vocabId = idOf[Array(content.utf8)] else {
        throw PETLError("\(what) \(shown(content.debugDescription)) is not in vocab.json")
      }
      guard vocabId == id else {
        throw PETLError("\(what) \(shown(content.debugDescription)) has id \(id) but vocab.json gives it \(vocabId)")
      }
      return BPEAddedToken(content: content, id: id, lstrip: try flag("lstrip"), rstrip: try flag("rstrip"),
                           normalized: try flag("normalized"))
    }
  }
}

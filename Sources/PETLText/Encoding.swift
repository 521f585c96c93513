
/// Model input for one example: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, with token type 0 for the
/// first segment (including its `[CLS]` and `[SEP]`) and 1 for the second (including its `[SEP]`).
public struct Encoding: Equatable, Sendable {
  public var inputIds: [Int32]
  public var tokenTypeIds: [Int32]

  public init(inputIds: [Int32], tokenTypeIds: [Int32]) {
    self.inputIds = inputIds
    self.tokenTypeIds = tokenTypeIds
  }
}

/// Where a family puts its special tokens: `cls a sep`, or for a pair `cls a sep`, then `pairSeparators - 1`
/// more `sep`, then `b sep`. The first segment (with its `cls` and `sep`) has token type 0, the rest
/// `secondType`: BERT `[CLS] a [SEP] b [SEP]` (one separator, type 1), RoBERTa `<s> a </s></s> b </s>`
/// (two, type 0).
struct SpecialTokenLayout {
  let cls: Int32, sep: Int32
  let pairSeparators: Int
  let secondType: Int32

  /// `cls a sep` (2) or the pair's 2 + `pairSeparators`.
  func count(pair: Bool) -> Int { pair ? 2 + pairSeparators : 2 }

  /// The model input, truncated longest-first to `maxLength` as HuggingFace's `truncation=True,
  /// max_length=maxLength`; `tokenize` writes a text's ids into a sink. Only the ids kept are held: a
  /// single text stops at `maxLength`, a pair counts the rest of each text. `maxLength` must leave room
  /// for the special tokens.
  func encode(_ a: String, _ b: String?, maxLength: Int, tokenize: (String, inout TokenSink) -> Void) -> Encoding {
    let specials = count(pair: b != nil)
    precondition(maxLength >= specials, "maxLength \(maxLength) leaves no room for the \(specials) special tokens")
    guard let b else {
      var first = TokenSink(keep: maxLength - 2, stopWhenFull: true)
      tokenize(a, &first)
      return Encoding(inputIds: [cls] + first.ids + [sep], tokenTypeIds: [Int32](repeating: 0, count: first.ids.count + 2))
    }
    let budget = maxLength - specials
    var first = TokenSink(keep: budget), second = TokenSink(keep: budget)
    tokenize(a, &first)
    tokenize(b, &second)
    let (n1, n2) = longestFirstLengths(first.count, second.count, budget: budget)
    var inputIds: [Int32] = [cls]
    inputIds.reserveCapacity(n1 + n2 + specials)
    inputIds += first.ids.prefix(n1)
    inputIds += [Int32](repeating: sep, count: pairSeparators)
    inputIds += second.ids.prefix(n2)
    inputIds.append(sep)
    return Encoding(inputIds: inputIds, tokenTypeIds: [Int32](repeating: 0, count: n1 + 2)
                      + [Int32](repeating: secondType, count: inputIds.count - n1 - 2))
  }
}

/// HuggingFace's "longest_first" truncation of a pair to `budget` tokens (special tokens excluded).
/// The shorter side keeps up to half the budget (rounded down), the longer side takes the rest; on a
/// tie the first text counts as the shorter one, so an odd budget gives its extra token to the second.
/// Verified against `tokenizers` for every length pair up to 19 and budgets up to 16.
func longestFirstLengths(_ n1: Int, _ n2: Int, budget: Int) -> (Int, Int) {
  if n1 + n2 <= budget { return (n1, n2) }
  if n1 > n2 {
    let second = min(n2, budget / 2)
    return (min(n1, budget - second), second)
  }
  let first = min(n1, budget / 2)
  return (first, min(n2, budget - first))
}


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

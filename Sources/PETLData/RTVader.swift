import Foundation
import PETLKernels
import PETLSupport

/// The embedded default task `rt-vader`: binary sentiment of Rotten Tomatoes review snippets, built
/// from the human-rated ground truth that Hutto & Gilbert (ICWSM 2014, the VADER paper) published
/// and that ships in the sdist of `vadersentiment==3.3.2` (`launch/fetch-rt-vader` fetches it). It is
/// small, public, licence-clean and needs no GLUE download, so a fresh checkout can run a whole cell.
///
/// The file `movieReviewSnippets_GroundTruth.txt` has 10,605 CRLF lines `id<TAB>score<TAB>text`
/// without a header, where score is the mean of human ratings on [-4, 4]. The task:
/// - label 1 (`positive`) if score > 0, 0 (`negative`) if score < 0; the 37 rows with score exactly 0
///   have no polarity and are not part of the task (dropped by definition, not as errors);
/// - split `dev` = rows whose `fnv1a64("rt-vader:" + id)` is 0 mod 10, `train` = all other rows. A hash
///   of the id, not the row order, so the split is stable under reordering and needs no stored list.
/// - order within a split: by SplitMix64's finaliser of `fnv1a64("rt-vader-order:" + id)`. The file lists mostly positive
///   snippets first, so file order would make `--max-train N` / `--max-eval N` prefixes one-sided;
///   the hash order is a fixed pseudo-random permutation, so every prefix is balanced in expectation.
/// Measured on the sha256-checked file: train 9,534 (4,804 negative, 4,730 positive), dev 1,034
/// (522 negative, 512 positive).
enum RTVader {
  static let fileName = "movieReviewSnippets_GroundTruth.txt"

  /// Whether the row with this id belongs to the dev split.
  static func isDev(id: String) -> Bool {
    // fnv1a64Hex always yields 16 hex digits, which always parse.
    UInt64(fnv1a64Hex("rt-vader:" + id), radix: 16)! % 10 == 0
  }

  static func load(dataDir: URL, split: String) throws -> [Example] {
    let url = dataDir.appendingPathComponent("rt-vader").appendingPathComponent(fileName)
    let file = try DelimitedText(url: url) {
      "\(url.path): file not found (task rt-vader reads folder rt-vader/ under the data directory "
        + "\(dataDir.path); run launch/setup or launch/fetch-rt-vader \(dataDir.path))"
    }
    let wantDev = split == "dev"
    var examples: [(key: UInt64, example: Example)] = []
    try file.forEachLine { line, fields in
      guard fields.count == 3 else {
        throw PETLError("\(file.path):\(line): expected 3 tab-separated columns (id, score, text), found \(fields.count)")
      }
      let id = file.text(fields[0])
      guard !id.isEmpty else { throw PETLError("\(file.path):\(line): empty id") }
      let token = file.text(fields[1])
      guard let score = Double(token), score.isFinite else {
        throw PETLError("\(file.path):\(line): score '\(shown(token))' is not a finite number")
      }
      guard score != 0, isDev(id: id) == wantDev else { return }
      // FNV alone keeps neighbouring ids close in its high bits; the SplitMix finaliser spreads them.
      let key = CounterRNG.mix(UInt64(fnv1a64Hex("rt-vader-order:" + id), radix: 16)!)
      examples.append((key, Example(textA: file.text(fields[2]), label: score > 0 ? 1 : 0)))
    }
    guard !examples.isEmpty else { throw PETLError("\(file.path): no rows in split \(split)") }
    return examples.sorted { $0.key < $1.key }.map(\.example)
  }
}

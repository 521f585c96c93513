import Foundation
import XCTest
@testable import PETLText
import PETLKernels
import PETLSupport

/// Both tokenizers on long and hostile lines: time linear in the line, truncation that keeps only
/// what it returns yet gives exactly what tokenizing everything and cutting would, and the two
/// shortcuts that make it so (per-scalar NFD; BPE cut where no merge can cross) against the plain
/// algorithms. Named "...TokenizerTests" so the debug pass (`--skip TokenizerTests`) leaves the
/// timings to release.
final class LinearTokenizerTests: XCTestCase {
  private func tokenizers() throws -> [(String, any Tokenizer)] {
    let model = try TestSupport.requireModel()
    return [("wordpiece", try BertTokenizer(modelDirectory: model)),
            ("bpe", try ByteLevelBPETokenizer(modelDirectory: TestSupport.fixtures.appendingPathComponent("bpe")))]
  }

  /// The best of `runs` timings of `body`, in seconds.
  private func best(_ runs: Int, _ body: () -> Void) -> Double {
    (0..<runs).map { _ in
      let t0 = DispatchTime.now().uptimeNanoseconds
      body()
      return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }.min()!
  }

  /// A quadratic tokenizer takes 16x as long on 1 MB as on 16 lines of 64 KB; a linear one about
  /// as long. A ratio, not a wall-clock limit, and the best of three runs of each, interleaved, so a
  /// loaded machine slows both sides alike. (A 10 MB line's time: `swift-petl bench --tokenizers`.)
  func testTimeIsLinearInTheLine() throws {
    for (name, tokenizer) in try tokenizers() {
      for kind in BenchText.allCases {
        let big = kind.make(bytes: 1 << 20), small = kind.make(bytes: 1 << 16)
        var bigTimes: [Double] = [], smallTimes: [Double] = []
        for _ in 0..<3 {
          bigTimes.append(best(1) { _ = tokenizer.ids(big) })
          smallTimes.append(best(1) { for _ in 0..<16 { _ = tokenizer.ids(small) } })
        }
        let ratio = bigTimes.min()! / smallTimes.min()!
        XCTAssertLessThan(ratio, 3, "\(name) \(kind): 1 MB took \(bigTimes.min()!) s, 16 x 64 KB \(smallTimes.min()!) s")
      }
    }
  }

  /// `encode` stops at `maxLength` for one text and counts the rest of a pair, which must be exactly
  /// the cut of the full ids that HuggingFace makes (longest-first on the full lengths).
  func testTruncationEqualsCuttingTheFullIds() throws {
    for (name, tokenizer) in try tokenizers() {
      let specials = tokenizer.specialTokenCount(pair: true)
      for kind in BenchText.allCases {
        let text = kind.make(bytes: 50_000), other = BenchText.words.make(bytes: 3_000)
        let all = tokenizer.ids(text), allOther = tokenizer.ids(other)
        for maxLength in [5, 128, 1_000, 100_000] {
          let single = tokenizer.encode(text, maxLength: maxLength).inputIds
          XCTAssertEqual(Array(single.dropFirst().dropLast()), Array(all.prefix(maxLength - 2)), "\(name) \(kind) @\(maxLength)")
          for (a, b, idsA, idsB) in [(text, other, all, allOther), (other, text, allOther, all)] {
            let pair = tokenizer.encode(a, b, maxLength: maxLength).inputIds
            let (n1, n2) = longestFirstLengths(idsA.count, idsB.count, budget: maxLength - specials)
            XCTAssertEqual(pair.count, n1 + n2 + specials, "\(name) \(kind) pair @\(maxLength)")
            XCTAssertEqual(Array(pair.dropFirst().prefix(n1)), Array(idsA.prefix(n1)), "\(name) \(kind) pair @\(maxLength)")
            XCTAssertEqual(Array(pair.dropLast().suffix(n2)), Array(idsB.prefix(n2)), "\(name) \(kind) pair @\(maxLength)")
          }
        }
      }
    }
  }

  /// The streaming normaliser (NFD scalar by scalar, marks put in canonical order by a stable sort)
  /// against the whole-text pipeline it replaced (Foundation's NFD of the text, Mn dropped,
  /// lower-cased, split, WordPiece), on random text dense in combining marks of different classes,
  /// marks that decompose into marks, Hangul, dotted capital I, final sigma and CJK.
  func testStreamingNormaliserEqualsWholeTextNFD() throws {
    let tokenizer = try BertTokenizer(modelDirectory: try TestSupport.requireModel())
    let vocabulary = try Vocabulary.load(TestSupport.modelDir.appendingPathComponent("vocab.txt"))
    let wordPiece = WordPiece(vocabulary: vocabulary, unkId: tokenizer.unkId)
    let alphabet: [Unicode.Scalar] = ["a", "e", "o", "Z", "é", "Å", "\u{301}", "\u{323}", "\u{327}", "\u{345}",
                                      "\u{344}", "\u{F73}", "\u{1D165}", "\u{1D16E}", "\u{903}", "\u{5B0}", "İ",
                                      "Σ", "가", "\u{AC01}", "中", "\u{F900}", " ", ",", "\u{200B}", "ǅ", "\u{1E09}"]
    var rng = SeededGenerator(seed: 23)
    for _ in 0..<3_000 {
      var text = String.UnicodeScalarView()
      for _ in 0..<Int(rng.next() % 40) { text.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
      let s = String(text)
      XCTAssertEqual(tokenizer.ids(s), Self.wholeTextIds(s, wordPiece), s.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: " "))
    }
  }

  /// The normaliser as it was before streaming: one NFD of the whole text.
  static func wholeTextIds(_ text: String, _ wordPiece: WordPiece) -> [Int32] {
    var cleaned = String.UnicodeScalarView()
    for s in text.unicodeScalars {
      if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
      if isWhitespace(s) { cleaned.append(" "); continue }
      if isCJKIdeograph(s) { cleaned.append(" "); cleaned.append(s); cleaned.append(" ") } else { cleaned.append(s) }
    }
    let stripped = String(cleaned).decomposedStringWithCanonicalMapping.unicodeScalars.filter { hfGeneralCategory($0) != .nonspacingMark }
    var normalized: [Unicode.Scalar] = []
    for s in stripped {
      if s.isASCII || !s.properties.changesWhenLowercased {
        normalized.append((0x41...0x5A).contains(s.value) ? Unicode.Scalar(UInt8(s.value) + 0x20) : s)
      } else {
        normalized.append(contentsOf: s.properties.lowercaseMapping.unicodeScalars)
      }
    }
    var ids: [Int32] = [], utf8: [UInt8] = [], offsets: [Int] = []
    var start = 0
    for (k, s) in normalized.enumerated() where isWhitespace(s) || isPunctuation(s) {
      if start < k { wordPiece.append(normalized[start..<k], to: &ids, utf8: &utf8, offsets: &offsets) }
      if isPunctuation(s) { wordPiece.append(normalized[k...k], to: &ids, utf8: &utf8, offsets: &offsets) }
      start = k + 1
    }
    if start < normalized.count { wordPiece.append(normalized[start...], to: &ids, utf8: &utf8, offsets: &offsets) }
    return ids
  }

  /// BPE cut between two bytes that no merged token holds side by side merges exactly as the
  /// whole piece would: random merge lists over a small alphabet (some tokens longer than the
  /// text's runs, some bytes without a token, whose neighbours then meet), random texts.
  func testBPECutsChangeNothing() throws {
    var rng = SeededGenerator(seed: 5)
    let letters = ["a", "b", "c", "Ġ"]
    for trial in 0..<200 {
      var tokens = ByteLevelAlphabet.characters.map { String($0) }.filter { trial % 3 != 0 || $0 != "c" }
      var merges: [(String, String)] = []
      var known = Set(tokens)
      for _ in 0..<Int(rng.next() % 30) {
        let pool = tokens.filter { $0.unicodeScalars.allSatisfy { letters.contains(String($0)) } }
        let a = pool[Int(rng.next() % UInt64(pool.count))], b = pool[Int(rng.next() % UInt64(pool.count))]
        guard (a + b).unicodeScalars.count <= 6 else { continue }
        merges.append((a, b))
        if known.insert(a + b).inserted { tokens.append(a + b) }
      }
      var idOf: [[UInt8]: Int32] = [:]
      for (i, t) in tokens.enumerated() { idOf[Array(t.utf8)] = Int32(i) }
      let cut = try BPEModel(vocabulary: idOf, merges: merges) { "merges[\($0)]" }
      var whole = cut
      whole.joinable = [UInt64](repeating: ~0, count: whole.joinable.count)
      for _ in 0..<20 {
        let text = (0..<Int(rng.next() % 40)).map { _ in Array("abc ".utf8)[Int(rng.next() % 4)] }
        var a = TokenSink(), b = TokenSink(), scratch = BPEScratch()
        text.withUnsafeBufferPointer { buf in
          cut.append(buf, 0..<buf.count, to: &a, scratch: &scratch)
          whole.append(buf, 0..<buf.count, to: &b, scratch: &scratch)
        }
        XCTAssertEqual(a.ids, b.ids, "trial \(trial): \(String(decoding: text, as: UTF8.self).debugDescription) with \(merges)")
      }
    }
  }
}

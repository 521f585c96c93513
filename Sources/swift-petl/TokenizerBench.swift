import Foundation
import PETLModel
import PETLText
import PETLTraining

/// `bench --tokenizers`: the time and memory of tokenizing one long line of each `BenchText` shape
/// with the model folder's tokenizer and the byte-level BPE of a RoBERTa folder, untruncated (every
/// id counted, as for the longer text of a pair) and truncated to 128 ids.
enum TokenizerBench {
  static func run(model: URL, bpe: URL, megabytes: Double) throws {
    let config = try? EncoderConfig.load(model.appendingPathComponent("config.json"))
    let tokenizers: [(String, any Tokenizer)] = [
      ("wordpiece", try loadTokenizer(modelDirectory: model, config: config)),
      ("bpe", try loadTokenizer(modelDirectory: bpe, config: nil)),
    ]
    let bytes = Int(megabytes * 1e6)
    print("tokenizers on one line of \(bytes) bytes (\(model.lastPathComponent), \(bpe.path)); one core")
    print("tokenizer  text        ids all     s all   MB/s    s truncated   peak RSS MB")
    for (name, tokenizer) in tokenizers {
      for kind in BenchText.allCases {
        let text = kind.make(bytes: bytes)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let ids = tokenizer.ids(text).count
        let t1 = DispatchTime.now().uptimeNanoseconds
        _ = tokenizer.encode(text, maxLength: 128)
        let t2 = DispatchTime.now().uptimeNanoseconds
        let all = Double(t1 - t0) / 1e9, truncated = Double(t2 - t1) / 1e9
        print(name.padding(toLength: 11, withPad: " ", startingAt: 0) + kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
              + String(format: " %10d %9.3f %6.1f %14.4f %13.0f", ids, all, Double(bytes) / 1e6 / all, truncated, Benchmark.peakResidentMB()))
      }
    }
  }
}

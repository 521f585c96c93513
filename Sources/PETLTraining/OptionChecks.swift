import PETLSupport

extension TrainOptions {
  /// Every check of a cell's options, in one place: the CLI runs it on its flags, the trainer on every
  /// spec it is handed (a grid's, a journal's, a test's). Errors name the flag.
  public func validate() throws {
    guard epochs > 0 else { throw PETLError("--epochs \(epochs): must be positive") }
    if let v = maxSteps { guard v > 0 else { throw PETLError("--max-steps \(v): must be positive") } }
    if let v = minSteps { guard v > 0 else { throw PETLError("--min-steps \(v): must be positive") } }
    guard batchSize > 0 else { throw PETLError("--batch-size \(batchSize): must be positive") }
    // The upper bound is the model's (max_position_embeddings): StudyContext.data checks it.
    guard maxLength >= 3 else {
      throw PETLError("--max-length \(maxLength): must be at least 3 (a sentence pair's [CLS] and two [SEP])")
    }
    guard weightDecay >= 0 else { throw PETLError("--weight-decay \(weightDecay): must be >= 0") }
    guard warmupRatio >= 0 && warmupRatio <= 1 else { throw PETLError("--warmup-ratio \(warmupRatio): must be in [0, 1]") }
    guard maxGradNorm >= 0 else { throw PETLError("--max-grad-norm \(maxGradNorm): must be >= 0") }
    if let p = dropout { guard p >= 0 && p < 1 else { throw PETLError("--dropout \(p): must be in [0, 1)") } }
    if let v = lengthBuckets { guard v >= 2 else { throw PETLError("--length-buckets \(v): must be at least 2 (batches per pool)") } }
    if let v = maxTrain { guard v > 0 else { throw PETLError("--max-train \(v): must be positive") } }
    if let v = maxEval { guard v > 0 else { throw PETLError("--max-eval \(v): must be positive") } }
    if method == .lora {
      guard loraRank > 0 && loraRank <= 4096 else { throw PETLError("--lora-rank \(loraRank): must be in 1...4096") }
      guard loraAlpha > 0 && loraAlpha.isFinite else { throw PETLError("--lora-alpha \(loraAlpha): must be positive") }
      guard loraDropout >= 0 && loraDropout < 1 else { throw PETLError("--lora-dropout \(loraDropout): must be in [0, 1)") }
    }
    guard restarts >= 0 && restarts <= 10 else { throw PETLError("--restarts \(restarts): must be in 0...10") }
    if let rates = learningRateCandidates {
      guard !rates.isEmpty, Set(rates).count == rates.count, rates.allSatisfy({ $0 > 0 && $0.isFinite }) else {
        throw PETLError("--lrs: give distinct positive rates")
      }
    } else {
      guard learningRate > 0 && learningRate.isFinite else { throw PETLError("--lr \(learningRate): must be positive") }
    }
    if let b = learningRateBounds {
      guard b.count == 2, b[0] > 0, b[0] < b[1], b[1].isFinite else {
        throw PETLError("--lr-bounds: expected LOW,HIGH with 0 < LOW < HIGH")
      }
      if let rates = learningRateCandidates, let lo = rates.min(), let hi = rates.max() {
        guard b[0] <= lo && hi <= b[1] else {
          throw PETLError("--lr-bounds \(b[0]),\(b[1]): the candidates \(lo)...\(hi) must lie within the bounds")
        }
      }
    }
  }
}

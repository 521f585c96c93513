import PETLKernels

/// One labelled input of a sentence or sentence-pair task, as HuggingFace's `InputExample` holds it.
public struct Example: Sendable, Equatable {
  /// The first (or only) sentence, passed on exactly as the file has it (no trimming), as HF does.
  public var textA: String
  /// The second sentence of a pair task; nil for single-sentence tasks (CoLA, SST-2, rt-vader).
  public var textB: String?
  /// The class index (as a Float) for classification, the gold score for regression (STS-B), so
  /// one array type carries the targets of every task to the loss.
  public var label: Float

  public init(textA: String, textB: String? = nil, label: Float) {
    self.textA = textA; self.textB = textB; self.label = label
  }
}

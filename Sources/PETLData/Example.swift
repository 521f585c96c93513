
/// One labelled input of a sentence or sentence-pair task, as HuggingFace's `InputExample` holds it.
public struct Example: Sendable, Equatable {
  /// The first (or only) sentence, passed on exactly as the file has it (no trimming), as HF does.
  public var textA: String
  /// The second sentence of a pair task; nil for single-sentence tasks (CoLA, SST-2, rt-vader).
  public var textB: String?
  /// The class index (as a Float) for classification, the gold score for regression (STS-B), so
  /// one array type carries the targets of every task to the loss.
  public var label: Float
  /// The row's id from a user's file (its `id` column), so predictions join back to the user's rows;
  /// nil when the file has none (GLUE, rt-vader): a prediction then names the row by its index.
  public var id: String?

  public init(textA: String, textB: String? = nil, label: Float, id: String? = nil) {
    self.textA = textA; self.textB = textB; self.label = label; self.id = id
  }
}

import Foundation
import PETLModel
import PETLTraining

/// What the study looks like at the paper's size, without its weights: BERT-base's configuration (as
/// the hub's `bert-base-uncased/config.json` gives it), the paper preset's plan on the eight GLUE
/// tasks, and the gradient sizes the all-reduce carries for the study's trainable sets. For the
/// cluster numbers (`comm-bench`, `simulate`, docs/cluster.md).
public enum StudyScale {
  /// `bert-base-uncased`: 12 layers of hidden size 768, 12 heads, intermediate 3072, 512 positions,
  /// two token types, a 30,522-token vocabulary.
  public static let bertBase = EncoderConfig(
    hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12, intermediateSize: 3072,
    maxPositionEmbeddings: 512, typeVocabSize: 2, vocabSize: 30522, layerNormEps: 1e-12,
    hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1)

  /// The GLUE tasks of the paper (WNLI left out, as the paper does).
  public static let glueTasks = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte"]

  /// A model's slab layout with a two-label head.
  public static func layout(_ config: EncoderConfig) -> ParameterLayout {
    ParameterLayout(dims: ModelDims(config: config, numLabels: 2))
  }

  /// The study's trainable sets from smallest to largest, as the gradient all-reduce sees them (the
  /// head included, as every cell trains it): the head alone, one layer's LayerNorms, every
  /// LayerNorm, one weight type (query) in one layer and in every layer, and full fine-tuning.
  public static func trainableSizes(_ layout: ParameterLayout) throws -> [(name: String, scalars: Int)] {
    let sets: [(String, [TrainableModule], LayerSelection)] = [
      ("classifier", [.classifier], .all), ("layernorm@0", [.layernorm], .indices([0])),
      ("layernorm", [.layernorm], .all), ("query@0", [.query], .indices([0])), ("query", [.query], .all),
      ("full", [.full], .all),
    ]
    return try sets.map { name, modules, layers in
      (name, try TrainableSet(modules: modules, layers: layers, layout: layout).count)
    }
  }

  /// The paper preset's cells on the eight GLUE tasks for `config`'s model: every module type
  /// module-wise and in each layer, full fine-tuning, BitFit, the head alone; three learning rates
  /// each; five seeds on the small tasks, three on the others.
  public static func paperPlan(config: EncoderConfig = bertBase, model: String = "bert-base-uncased") throws -> GridPlan {
    let planner = StudyPlanner(config: config, modelDirectory: URL(fileURLWithPath: model),
                               dataDirectory: URL(fileURLWithPath: "/nonexistent"))
    var request = StudyRequest()
    request.preset = .paper
    request.tasks = glueTasks
    return try planner.plan(request, options: { $0 })
  }
}

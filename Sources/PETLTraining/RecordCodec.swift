import Foundation

/// The one JSON codec of results: journal lines, the messages between ranks, the report's reader and
/// `train --output`. NaN and infinities are legal values of a diverged cell's loss and JSON has no
/// literal for them, so they are written "nan", "inf", "-inf" and read back as numbers. Keys are
/// sorted, so equal records are equal bytes.
public enum RecordCodec {
  public static let encoder = makeEncoder([.sortedKeys, .withoutEscapingSlashes])
  /// The same, indented, for files a person reads.
  public static let prettyEncoder = makeEncoder([.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])

  public static let decoder: JSONDecoder = {
    let d = JSONDecoder()
    d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return d
  }()

  private static func makeEncoder(_ formatting: JSONEncoder.OutputFormatting) -> JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = formatting
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return e
  }
}

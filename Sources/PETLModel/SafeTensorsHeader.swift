import Foundation
import PETLSupport

/// The JSON header of a safetensors file, decoded but not yet checked against the data section.
/// Its keys are tensor names plus the optional `__metadata__`, so it is decoded key by key.
struct SafeTensorsHeader: Decodable {
  struct RawTensor: Decodable {
    let dtype: String
    let shape: [Int]
    let dataOffsets: [Int]
    enum CodingKeys: String, CodingKey { case dtype, shape, dataOffsets = "data_offsets" }
  }

  /// A header problem found while decoding, already phrased for the user (without the path).
  struct Problem: Error { let message: String }

  var metadata: [String: String] = [:]
  var tensors: [(name: String, raw: RawTensor)] = []

  static let metadataKey = "__metadata__"

  static func decode(_ bytes: Data, path: String) throws -> SafeTensorsHeader {
    guard bytes.first == UInt8(ascii: "{") else {
      throw PETLError("\(path): header is not a JSON object")
    }
    do {
      return try JSONDecoder().decode(SafeTensorsHeader.self, from: bytes)
    } catch let problem as Problem {
      throw PETLError("\(path): \(problem.message)")
    } catch {
      throw PETLError("\(path): header is not valid JSON (\(oneLine(error)))")
    }
  }

  init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: AnyCodingKey.self)
    for key in container.allKeys {
      if key.stringValue == Self.metadataKey {
        guard let map = try? container.decode([String: String].self, forKey: key) else {
          throw Problem(message: "__metadata__ must map strings to strings")
        }
        metadata = map
      } else {
        do {
          tensors.append((key.stringValue, try container.decode(RawTensor.self, forKey: key)))
        } catch {
          throw Problem(message: "tensor '\(key.stringValue)' header entry is malformed (\(oneLine(error)))")
        }
      }
    }
  }
}

/// A coding key for JSON objects whose keys are data (tensor names, config fields).
struct AnyCodingKey: CodingKey {
  let stringValue: String
  let intValue: Int?
  init(_ string: String) { stringValue = string; intValue = nil }
  init?(stringValue: String) { self.init(stringValue) }
  init?(intValue: Int) { stringValue = String(intValue); self.intValue = intValue }
}

import Foundation
import PETLSupport

/// The JSON header of a safetensors file, decoded but not yet checked against the data section.
/// Read as the Rust library reads it (serde): keys are tensor names plus the optional
/// `__metadata__` (strings to strings); each tensor has `dtype` (a string), `shape` and
/// `data_offsets` (non-negative integers: `1e3` or `2.0` is refused); other members of a tensor
/// entry are ignored; a name listed twice keeps its last entry (the first one's bytes are then
/// undescribed, which `SafeTensors.open` refuses, as the Rust library does).
struct SafeTensorsHeader {
  struct RawTensor {
    let dtype: String
    let shape: [Int]
    let dataOffsets: [Int]
  }

  var metadata: [String: String] = [:]
  var tensors: [(name: String, raw: RawTensor)] = []

  static let metadataKey = "__metadata__"

  static func decode(_ bytes: Data, path: String) throws -> SafeTensorsHeader {
    guard bytes.first == UInt8(ascii: "{") else {
      throw PETLError("\(path): header is not a JSON object")
    }
    let json: JSONValue
    do { json = try JSONValue.parse([UInt8](bytes)) } catch {
      throw PETLError("\(path): header is not valid JSON (\(oneLine(error)))")
    }
    guard case .object(let members) = json else { throw PETLError("\(path): header is not a JSON object") }
    var header = SafeTensorsHeader()
    var position: [String: Int] = [:]
    for (key, value) in members {
      if key == metadataKey {
        guard case .object(let entries) = value else { throw PETLError("\(path): __metadata__ must map strings to strings") }
        var map: [String: String] = [:]
        for (k, v) in entries {
          guard case .string(let s) = v else { throw PETLError("\(path): __metadata__ must map strings to strings") }
          map[k] = s
        }
        header.metadata = map
        continue
      }
      let raw = try tensor(key, value, path)
      if let k = position[key] { header.tensors[k] = (key, raw) } else {
        position[key] = header.tensors.count
        header.tensors.append((key, raw))
      }
    }
    return header
  }

  private static func tensor(_ name: String, _ value: JSONValue, _ path: String) throws -> RawTensor {
    func problem(_ what: String) -> PETLError { PETLError("\(path): tensor '\(shown(name))' header entry is malformed (\(what))") }
    guard case .object = value else { throw problem("expected an object, found \(value.typeName)") }
    guard case .string(let dtype)? = value["dtype"] else { throw problem("'dtype' must be a string") }
    func integers(_ key: String) throws -> [Int] {
      guard case .array(let items)? = value[key] else { throw problem("'\(key)' must be an array of non-negative integers") }
      return try items.map { item in
        guard case .number(let text) = item, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(text) else {
          throw problem("'\(key)' must be an array of non-negative integers, found \(item.typeName) \(Self.literal(item))")
        }
        return n
      }
    }
    return RawTensor(dtype: dtype, shape: try integers("shape"), dataOffsets: try integers("data_offsets"))
  }

  private static func literal(_ v: JSONValue) -> String {
    guard case .number(let text) = v else { return "" }
    return shown(text, limit: 30)
  }
}

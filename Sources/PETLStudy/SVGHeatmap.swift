import Foundation

/// A module type x layer heatmap as standalone SVG: one `<rect>` per grid cell (grey when the cell has
/// no result), the score printed in each cell in black or white by the fill's luminance (with a
/// smaller second line, e.g. its interval, when given), and a legend of `legendSteps` rects from the
/// minimum to the maximum with both values labelled.
public enum SVGHeatmap {
  public static let legendSteps = 10

  static let cellWidth = 84, cellHeight = 40, fontSize = 13, noteSize = 10
  /// ColorBrewer "Blues" anchors, light (low score) to dark (high score).
  static let ramp: [(Double, Double, Double)] = [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)]

  /// `values[row][column]`, nil for a cell without a result. `label` prints a value (cells and legend);
  /// a log-scale map passes log values and a label that undoes the log.
  /// `notes[row][column]`, when given, is printed under the value in a smaller font.
  public static func render(title: String, rows: [String], columns: [String], values: [[Double?]],
                            notes: [[String?]]? = nil, label: ((Double) -> String)? = nil) -> String {
    let label = label ?? { ReportFormat.score($0) }
    let present = values.flatMap { $0 }.compactMap { $0 }
    let low = present.min() ?? 0, high = present.max() ?? 0
    let left = 16 + 8 * (rows.map(\.count).max() ?? 0), top = 56
    let gridWidth = cellWidth * columns.count, gridHeight = cellHeight * rows.count
    let legendTop = top + gridHeight + 24, legendStep = max(gridWidth / legendSteps, 16)
    // Labels are sized by an estimate of 0.6 em per character; the bold title (wider: up to 0.68 em
    // per character in Helvetica Bold) sets a floor on the width, with its margins on both sides.
    let width = max(left + max(gridWidth, legendStep * legendSteps) + 16, 24 + title.count * (fontSize + 3) * 68 / 100)
    let height = legendTop + 44

    var svg = [
      #"<?xml version="1.0" encoding="UTF-8"?>"#,
      #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(width)" height="\#(height)" viewBox="0 0 \#(width) \#(height)" font-family="Helvetica, Arial, sans-serif">"#,
      text(x: 8, y: 22, escape(title), size: fontSize + 3, weight: "bold"),
    ]
    for (c, column) in columns.enumerated() {
      svg.append(text(x: left + c * cellWidth + cellWidth / 2, y: top - 10, escape(column), anchor: "middle"))
    }
    for (r, row) in rows.enumerated() {
      let y = top + r * cellHeight
      svg.append(text(x: left - 8, y: y + cellHeight / 2 + fontSize / 3, escape(row), anchor: "end"))
      for c in columns.indices {
        let x = left + c * cellWidth
        let value = r < values.count && c < values[r].count ? values[r][c] : nil
        let fill = value.map { colour(fraction(of: $0, low: low, high: high)) } ?? (224, 224, 224)
        svg.append(#"<rect x="\#(x)" y="\#(y)" width="\#(cellWidth)" height="\#(cellHeight)" fill="\#(hex(fill))" stroke="white"/>"#)
        let ink = value == nil ? "#555555" : textColour(on: fill)
        let note = notes.flatMap { r < $0.count && c < $0[r].count ? $0[r][c] : nil }
        let valueY = note == nil ? y + cellHeight / 2 + fontSize / 3 : y + cellHeight / 2 - 2
        svg.append(text(x: x + cellWidth / 2, y: valueY, value.map(label) ?? "n/a", anchor: "middle", fill: ink))
        if let note {
          svg.append(text(x: x + cellWidth / 2, y: y + cellHeight - 7, escape(note), size: noteSize, anchor: "middle", fill: ink))
        }
      }
    }
    for i in 0..<legendSteps {
      let fill = colour((Double(i) + 0.5) / Double(legendSteps))
      svg.append(#"<rect x="\#(left + i * legendStep)" y="\#(legendTop)" width="\#(legendStep)" height="14" fill="\#(hex(fill))"/>"#)
    }
    svg.append(text(x: left, y: legendTop + 30, "min \(label(low))"))
    svg.append(text(x: left + legendStep * legendSteps, y: legendTop + 30, "max \(label(high))", anchor: "end"))
    svg.append("</svg>")
    return svg.joined(separator: "\n") + "\n"
  }

  /// Position of a value in [low, high]; the middle of the scale when all values are equal.
  static func fraction(of value: Double, low: Double, high: Double) -> Double {
    high > low ? (value - low) / (high - low) : 0.5
  }

  static func colour(_ t: Double) -> (Double, Double, Double) {
    let scaled = min(max(t, 0), 1) * Double(ramp.count - 1)
    let i = min(Int(scaled), ramp.count - 2), f = scaled - Double(i)
    let (a, b) = (ramp[i], ramp[i + 1])
    return (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f, a.2 + (b.2 - a.2) * f)
  }

  /// White on dark fills, near-black on light ones (relative luminance threshold).
  static func textColour(on fill: (Double, Double, Double)) -> String {
    (0.2126 * fill.0 + 0.7152 * fill.1 + 0.0722 * fill.2) / 255 < 0.5 ? "#ffffff" : "#111111"
  }

  static func hex(_ c: (Double, Double, Double)) -> String {
    String(format: "#%02x%02x%02x", Int(c.0.rounded()), Int(c.1.rounded()), Int(c.2.rounded()))
  }

  /// XML text escaping for labels that come from journals (task and module names).
  static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
      .replacingOccurrences(of: "'", with: "&apos;")
  }

  private static func text(x: Int, y: Int, _ content: String, size: Int = fontSize, anchor: String = "start",
                           fill: String = "#111111", weight: String = "normal") -> String {
    #"<text x="\#(x)" y="\#(y)" font-size="\#(size)" text-anchor="\#(anchor)" font-weight="\#(weight)" fill="\#(fill)">\#(content)</text>"#
  }
}

import Glibc
import PushCore
import PushPosix

/// Number formatting without Foundation.
enum Format {
    /// `value` with `decimals` digits after the point.
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "—" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        let fraction = Int(scaled - Double(whole) * scale)
        var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
        if decimals > 0 {
            let digits = String(fraction)
            text += "." + String(repeating: "0", count: max(0, decimals - digits.count)) + digits
        }
        return text
    }

    /// Milliseconds with a precision that suits their size.
    static func ms(_ value: Double) -> String {
        value < 10 ? fixed(value, 2) : value < 100 ? fixed(value, 1) : fixed(value, 0)
    }

    /// An integer with thousands separators: 1,234,567.
    static func count<T: BinaryInteger>(_ value: T) -> String {
        let digits = Array(String(value.magnitude))
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// A rate per second, rounded to an integer with separators.
    static func rate(_ value: Double) -> String {
        value.isFinite ? count(Int(value.rounded())) + "/s" : "—"
    }

    /// "1 process", "6 processes".
    static func plural(_ count: Int, _ noun: String) -> String {
        "\(count) " + (count == 1 ? noun : noun.hasSuffix("s") ? noun + "es" : noun + "s")
    }

    static func seconds(_ value: Double) -> String { fixed(value, value < 10 ? 2 : 1) + " s" }
}

/// The table a scenario prints: Markdown, so it can be pasted into BENCHMARKS.md as it is.
struct Table {
    let title: String
    private(set) var header: [String]
    private(set) var rows: [[String]] = []

    init(_ title: String, header: [String] = ["measure", "value"]) {
        self.title = title
        self.header = header
    }

    mutating func add(_ cells: String...) { rows.append(cells) }

    mutating func add(_ cells: [String]) { rows.append(cells) }

    func print() {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            "| "
                + cells.enumerated().map { index, cell in
                    cell + String(repeating: " ", count: max(0, widths[index] - cell.count))
                }.joined(separator: " | ") + " |"
        }
        var text = "\n" + title + "\n\n" + line(header) + "\n"
        text += "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|\n"
        for row in rows { text += line(row + Array(repeating: "", count: max(0, header.count - row.count))) + "\n" }
        Swift.print(text, terminator: "")
    }
}

/// Writes `bytes` to `path` (creating or truncating it).
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let fd = Posix.createFile(path) else { throw BenchError("cannot write \(path): \(Posix.errorText(errno))") }
    defer { Posix.close(fd) }
    guard bytes.withUnsafeBytes({ Posix.writeAll(fd, $0) }) else {
        throw BenchError("cannot write \(path): \(Posix.errorText(errno))")
    }
}

/// Messages for the person running the bench: stderr, so stdout keeps only the table.
func note(_ text: String) {
    var line = "pushgw-bench: " + text + "\n"
    _ = line.withUTF8 { Posix.writeAll(2, UnsafeRawBufferPointer($0)) }
}

import Glibc
import PushCore
import PushPosix

/// Writes a scenario's result file: `{"scenario":…,"date":…,"cores":n, …}` plus what `build` adds.
func writeResults(_ path: String?, scenario: String, startLoad: Double, _ build: (inout JSONWriter) -> Void) throws {
    guard let path else { return }
    var writer = JSONWriter()
    writer.object {
        $0.field("scenario", scenario)
        $0.field("date", utcTimestamp())
        $0.field("cores", Posix.cores())
        $0.field("loadavg_1m_at_start", startLoad, decimals: 2)
        build(&$0)
    }
    try writeFile(path, writer.bytes + [UInt8(ascii: "\n")])
    note("wrote \(path)")
}

extension JSONWriter {
    /// A number rounded to `decimals` places.
    mutating func field(_ name: String, _ number: Double, decimals: Int) {
        key(name)
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        value((number * scale).rounded() / scale)
    }

    mutating func field(_ name: String, _ latency: Latency) {
        key(name)
        latency.summary(into: &self)
    }
}

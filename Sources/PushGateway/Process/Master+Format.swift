import Glibc
import PushPosix

/// How the master writes times and exit statuses in its logs.
extension Master {
    /// Local wall-clock time, `HH:MM:SS`, for `tail` lines.
    static func clockTime() -> String {
        var parts = Posix.calendarTime()
        var buffer = [CChar](repeating: 0, count: 16)
        let count = strftime(&buffer, buffer.count, "%H:%M:%S", &parts)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exit \((status >> 8) & 0xff)" }
        return "signal \(signal)"
    }
}

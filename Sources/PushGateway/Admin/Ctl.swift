import ArgumentParser
import Glibc
import PushCore
import PushPosix

/// `pushgw ctl <command…>`: the admin socket's client (SPEC §6). Blocking I/O: this is a short-lived tool, not a
/// loop. `stats` is printed as tables, `tail` as one line rewritten in place on a terminal (plain lines
/// otherwise), everything else as the gateway wrote it.
struct Ctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Send a command to a running gateway's admin socket.",
        discussion: """
            Commands: stats, tail, conns [uid], kick <uid> [key], nodes, reload, drain, log-level <level>, bans, ban, unban, notify [count], help \
            (`pushgw ctl help` says what each does).

            Exit status: 0 done; 1 the gateway refused the command (ERR); 2 configuration error; 3 the gateway \
            cannot be reached or closed the connection; 64 usage error.
            """)

    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "The admin socket (default: server.admin_socket of the configuration).")
    var socket: String?
    @Flag(name: .long, help: "Print the gateway's reply as it is (stats as `name value` lines).")
    var raw = false
    @Argument(help: "The command and its arguments, e.g. `stats`, `tail`, `kick u1 phone` (see the list above).")
    var command: [String] = []

    /// Seconds to wait for an answer (not for `tail`, which runs until interrupted).
    static let answerTimeout = 10.0

    func run() throws {
        guard !command.isEmpty else { throw ValidationError("name a command, e.g. `pushgw ctl stats` (see --help)") }
        // A gateway or a reader that went away is an error to report, not a signal to die of.
        Posix.ignore(SIGPIPE)
        let path = try socket ?? options.load().0.server.adminSocket
        let tail = command[0].lowercased() == "tail"
        let fd: Int32
        do {
            fd = try Posix.connectUnix(path: path, timeout: tail ? 0 : Self.answerTimeout)
        } catch let error as SystemError {
            throw Self.fail(
                "cannot reach the gateway's admin socket at \(path): \(Posix.errorText(error.errno))"
                    + " (is `pushgw serve` running, with this configuration and working directory?)", status: 3)
        }
        defer { Posix.close(fd) }
        var reader = LineReader(fd: fd)
        guard Self.writeAll(fd, Array((command.joined(separator: " ") + "\n").utf8)) else {
            throw Self.fail("the gateway closed the admin connection", status: 3)
        }
        if tail { try follow(&reader) }
        var lines: [String] = []
        while true {
            switch reader.next() {
            case .line("."):
                return try finish(lines)
            case .line(let line):
                lines.append(line)
            case .end:
                throw Self.fail("the gateway closed the connection before answering", status: 3)
            case .timedOut:
                throw Self.fail("no answer from the gateway within \(Int(Self.answerTimeout)) s", status: 3)
            }
        }
    }

    private func finish(_ lines: [String]) throws {
        if let first = lines.first, first.hasPrefix("ERR ") {
            throw Self.fail(String(first.dropFirst(4)), status: 1)
        }
        if command[0].lowercased() == "stats" && !raw {
            Self.output(StatsTable.render(lines))
        } else {
            Self.output(lines.map { $0 + "\n" }.joined())
        }
    }

    /// `tail`: on a terminal, one line rewritten in place (`\r`, then erase to the end of the line); otherwise a
    /// line each second. Returns only by throwing (the gateway went away, or refused).
    private func follow(_ reader: inout LineReader) throws -> Never {
        let terminal = Posix.isTerminal(1)
        var first = true
        while true {
            switch reader.next() {
            case .line(let line):
                if first, line.hasPrefix("ERR ") { throw Self.fail(String(line.dropFirst(4)), status: 1) }
                first = false
                guard Self.output(terminal ? "\r\(Self.fitted(line))\u{1B}[K" : line + "\n") else {
                    throw ExitCode.success
                }
            case .end, .timedOut:
                if terminal && !first { Self.output("\n") }
                throw Self.fail("the gateway closed the connection", status: 3)
            }
        }
    }

    /// `line` cut to the terminal's width, so that `\r` rewrites it in place instead of scrolling.
    private static func fitted(_ line: String) -> String {
        var size = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 1, line.count >= Int(size.ws_col) else {
            return line
        }
        return String(line.prefix(Int(size.ws_col) - 1))
    }

    /// Writes to stdout; false when nobody reads it any more (`pushgw ctl tail | head`).
    @discardableResult
    private static func output(_ text: String) -> Bool {
        writeAll(1, Array(text.utf8))
    }

    private static func fail(_ message: String, status: Int32) -> ExitCode {
        _ = writeAll(2, Array("pushgw ctl: \(message)\n".utf8))
        return ExitCode(status)
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Posix.writeAll(fd, $0) }
    }
}

/// Lines from a blocking socket (with a receive timeout).
private struct LineReader {
    enum Next: Equatable {
        case line(String)
        case end
        case timedOut
    }

    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    mutating func next() -> Next {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffer[..<newline])
                buffer.removeFirst(newline + 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return .line(String(decoding: line, as: UTF8.self))
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            switch try? chunk.withUnsafeMutableBytes({ try Posix.read(fd, into: $0) }) {
            case .done(let count)? where count > 0: buffer += chunk[..<count]
            case .wouldBlock?: return .timedOut
            case .done?, nil: return .end
            }
        }
    }
}

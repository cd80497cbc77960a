import Glibc
import PushCore
import PushPosix

/// Complete lines out of a byte stream that arrives in arbitrary chunks.
struct LineBuffer {
    private var pending: [UInt8] = []

    /// Appends `bytes` and returns every line they complete, without the newline.
    mutating func append(_ bytes: UnsafeRawBufferPointer) -> [String] {
        pending.append(contentsOf: bytes)
        var lines: [String] = []
        var start = 0
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(String(decoding: pending[start..<newline], as: UTF8.self))
            start = newline + 1
        }
        if start > 0 { pending.removeFirst(start) }
        return lines
    }
}

/// A child's end of its link to the coordinator (the parent `pushgw-bench`): commands arrive as lines on stdin,
/// reports leave as JSON lines on stdout. End of stdin means the coordinator is gone, and the child quits.
final class ParentLink: LoopHandler {
    private let loop: EventLoop
    private var lines = LineBuffer()
    /// A command line split on spaces: the command, then its arguments.
    var onCommand: (String, [String]) -> Void = { _, _ in }
    /// Stdin reached its end or failed.
    var onClose: () -> Void = {}

    init(loop: EventLoop) {
        self.loop = loop
        // Die with the coordinator even if it is killed before it can close our stdin.
        Posix.dieWithParent(SIGKILL)
        Posix.setNonBlocking(0)
        loop.register(0, self, events: .read)
    }

    func handleEvents(_ events: IOEvents) {
        let result = try? Posix.read(0, into: loop.scratch)
        if case .wouldBlock = result { return }
        guard case .done(let count) = result, count > 0 else {
            loop.unregister(0)
            return onClose()
        }
        for line in lines.append(UnsafeRawBufferPointer(rebasing: loop.scratch[..<count])) {
            let words = line.split(separator: " ").map(String.init)
            if let command = words.first { onCommand(command, Array(words.dropFirst())) }
        }
    }

    /// Writes one JSON line to the coordinator (blocking: the coordinator reads promptly).
    static func send(_ build: (inout JSONWriter) -> Void) {
        var writer = JSONWriter()
        writer.object(build)
        var bytes = writer.bytes
        bytes.append(UInt8(ascii: "\n"))
        // The coordinator is gone when its end fails.
        guard bytes.withUnsafeBytes({ Posix.writeAll(1, $0) }) else { exit(3) }
    }
}

import CLibev
import Glibc
import PushCore

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
final class ParentLink: IOHandler {
    private let loop: BenchLoop
    private var lines = LineBuffer()
    /// A command line split on spaces: the command, then its arguments.
    var onCommand: (String, [String]) -> Void = { _, _ in }
    /// Stdin reached its end or failed.
    var onClose: () -> Void = {}

    init(loop: BenchLoop) {
        self.loop = loop
        // Die with the coordinator even if it is killed before it can close our stdin.
        _ = clibev_set_parent_death_signal(SIGKILL)
        _ = fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK)
        loop.register(0, self, events: Int32(EV_READ))
    }

    func handleEvents(_ events: Int32) {
        switch Sockets.read(0, into: loop.scratch) {
        case .bytes(let count):
            for line in lines.append(UnsafeRawBufferPointer(rebasing: loop.scratch[..<count])) {
                let words = line.split(separator: " ").map(String.init)
                if let command = words.first { onCommand(command, Array(words.dropFirst())) }
            }
        case .wouldBlock:
            break
        case .closed, .failed:
            loop.unregister(0)
            onClose()
        }
    }

    /// Writes one JSON line to the coordinator (blocking: the coordinator reads promptly).
    static func send(_ build: (inout JSONWriter) -> Void) {
        var writer = JSONWriter()
        writer.object(build)
        var bytes = writer.bytes
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    exit(3)  // the coordinator is gone
                }
            }
        }
    }
}

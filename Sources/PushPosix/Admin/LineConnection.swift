import PushCore

/// A `SocketConnection` that speaks in newline-terminated lines: the admin socket's clients and both ends of a
/// worker's control pipe. Output is bounded by `maxOutput` like every connection's: a peer that does not read is
/// dropped rather than allowed to grow the master's or a worker's memory.
open class LineConnection: SocketConnection {
    /// Longest line accepted; a longer one closes the connection (`protocol_error`).
    public final let maxLine: Int
    public final let outputLimit: Int
    private final var partial: [UInt8] = []

    public init(fd: Int32, loop: EventLoop, maxLine: Int, outputLimit: Int) {
        self.maxLine = maxLine
        self.outputLimit = outputLimit
        super.init(fd: fd, loop: loop)
    }

    /// One line arrived, without its `\n` (and without a `\r` before it).
    open func receivedLine(_ line: [UInt8]) {}

    public override var maxOutput: Int { outputLimit }

    public override final func received(_ bytes: UnsafeRawBufferPointer) {
        var start = 0
        while isOpen, let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
            var line = partial
            partial = []
            line.append(contentsOf: bytes[start..<newline])
            start = newline + 1
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            guard line.count <= maxLine else { return close(.protocolError) }
            receivedLine(line)
        }
        guard isOpen else { return }
        partial.append(contentsOf: bytes[start...])
        if partial.count > maxLine { close(.protocolError) }
    }

    /// Queues `text` and a newline.
    @discardableResult
    public final func send(line text: String) -> Bool {
        enqueue {
            $0.append(contentsOf: text.utf8)
            $0.append(UInt8(ascii: "\n"))
        }
    }

    /// Queues bytes that already end with a newline.
    @discardableResult
    public final func send(bytes: [UInt8]) -> Bool {
        enqueue { $0.append(contentsOf: bytes) }
    }
}

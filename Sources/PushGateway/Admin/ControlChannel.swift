import PushCore
import PushPosix

/// One end of a worker's control pipe (a socketpair made by the master; the worker finds its end on descriptor
/// 3): `ControlMessage`s, one JSON line each, both ways. The same class serves the master's end (one per worker)
/// and the worker's. Non-blocking and bounded like every connection on a loop: a side that stops reading gets
/// its pipe closed rather than stalling the other.
final class ControlChannel: LineConnection {
    /// A message arrived.
    var onMessage: ((ControlMessage) -> Void)?
    /// The pipe closed (the other side exited or stopped reading, or a line was unreadable).
    var onClose: ((CloseReason) -> Void)?

    /// Room for the largest message, the `/metrics` text or a `conns` reply, many times over.
    static let limit = 16 << 20

    init(fd: Int32, loop: EventLoop) {
        super.init(fd: fd, loop: loop, maxLine: Self.limit, outputLimit: Self.limit)
    }

    override func receivedLine(_ line: [UInt8]) {
        guard let message = ControlMessage(line: line) else { return }
        onMessage?(message)
    }

    override func didClose(_ reason: CloseReason) {
        onClose?(reason)
    }

    @discardableResult
    func send(_ message: ControlMessage) -> Bool {
        send(bytes: message.line)
    }
}

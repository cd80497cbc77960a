import Glibc
import PushCore
import PushPosix

/// One client connection of a receivers process: connect, AUTH, then frames in, heartbeats and ACKs out.
final class ReceiverConnection: LoopHandler {
    private enum State { case connecting, authenticating, online, closed }

    private unowned let owner: Receivers
    let index: Int
    private let fd: Int32
    let startedAt: UInt64
    private var state = State.connecting
    /// The tail of a frame not yet complete.
    private var pending: [UInt8] = []
    /// Bytes the socket did not take yet.
    private var output: [UInt8] = []
    /// Why the server is about to close us (DISCONNECT reason or ERROR code), if it said.
    private var farewell: String?
    /// The server's DISCONNECT said to reconnect after this many milliseconds.
    private var reconnectAfter: Int?

    var lastSeq: UInt32 = 0
    var ackedSeq: UInt32 = 0
    var ackQueued = false
    var complete = false
    /// Replay: the user's last seq when it authenticated (from AUTH_REPLY); complete once it got that one.
    var target: UInt64 = 0

    /// The largest frame accepted: far above any `max_frame`, only a guard against garbage.
    static let maxFrame = 16 << 20

    init(owner: Receivers, index: Int, fd: Int32, startedAt: UInt64) {
        self.owner = owner
        self.index = index
        self.fd = fd
        self.startedAt = startedAt
    }

    var isOnline: Bool { state == .online }
    var isHandshaking: Bool { state == .connecting || state == .authenticating }

    func handleEvents(_ events: IOEvents) {
        if state == .connecting {
            guard events.contains(.write) else { return }
            let error = Posix.pendingError(fd)
            guard error == 0 else { return close("connect: \(Sockets.errnoName(error))") }
            state = .authenticating
            owner.loop.setEvents(fd, .read)
            var frame: [UInt8] = []
            Frame.encode(operation: .auth, sequence: 1, body: owner.authBody(index), into: &frame)
            send(frame)
            return
        }
        if events.contains(.write) { flush() }
        if events.contains(.read) && state != .closed { readable() }
    }

    /// Sends `bytes` now, or queues what the socket does not take and waits for it to be writable.
    func send(_ bytes: [UInt8]) {
        guard state != .closed else { return }
        if output.isEmpty {
            output = bytes
        } else {
            output.append(contentsOf: bytes)
        }
        flush()
    }

    private func flush() {
        guard !output.isEmpty else { return }
        do {
            if case .done(let count) = try output.withUnsafeBytes({ try Posix.write(fd, from: $0) }) {
                output.removeFirst(count)
            }
        } catch {
            return close("write: \(Sockets.errnoName(error))")
        }
        owner.loop.setEvents(fd, output.isEmpty ? .read : IOEvents.read.union(.write))
    }

    private func readable() {
        let scratch = owner.loop.scratch
        let count: Int
        do {
            guard case .done(let read) = try Posix.read(fd, into: scratch) else { return }
            count = read
        } catch {
            return close(farewell ?? "read: \(Sockets.errnoName(error))")
        }
        guard count > 0 else { return close(farewell ?? "closed by the server") }
        owner.now = Posix.monotonicNanos()
        consume(UnsafeRawBufferPointer(rebasing: scratch[..<count]))
    }

    private func consume(_ bytes: UnsafeRawBufferPointer) {
        if pending.isEmpty {
            let used = parse(bytes)
            guard used >= 0 else { return close("bad frame from the server") }
            if used < bytes.count && state != .closed { pending = Array(bytes[used...]) }
        } else {
            pending.append(contentsOf: bytes)
            let used = pending.withUnsafeBytes { parse($0) }
            guard used >= 0 else { return close("bad frame from the server") }
            if state != .closed { pending.removeFirst(used) }
        }
    }

    /// Handles every whole frame at the start of `bytes`; returns how many bytes they used, -1 on a bad frame.
    private func parse(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while bytes.count - offset >= 16 {
            let length = Int(Self.bigEndian32(bytes, offset))
            guard length >= 16, length <= Self.maxFrame else { return -1 }
            guard bytes.count - offset >= length else { break }
            let operation = Self.bigEndian32(bytes, offset + 8)
            let sequence = Self.bigEndian32(bytes, offset + 12)
            frame(operation, sequence, UnsafeRawBufferPointer(rebasing: bytes[(offset + 16)..<(offset + length)]))
            offset += length
        }
        return offset
    }

    private func frame(_ operation: UInt32, _ sequence: UInt32, _ body: UnsafeRawBufferPointer) {
        switch operation {
        case Operation.firstApplication...:
            owner.message(self, seq: sequence, body: body)
        case Operation.heartbeatReply.rawValue:
            owner.heartbeatReplies += 1
        case Operation.authReply.rawValue:
            guard state == .authenticating else { return }
            state = .online
            owner.authenticated(self, lastSeq: ByteScan.member("\"last_seq\":", in: body) ?? 0)
        case Operation.raw.rawValue, Operation.syncReply.rawValue:
            // A batch of whole frames.
            _ = parse(body)
        case Operation.disconnect.rawValue:
            let json = try? JSONParser.parse(body)
            farewell = "DISCONNECT " + (json?["reason"]?.stringValue ?? "?")
            if json?["reconnect"]?.boolValue == true { reconnectAfter = json?["after_ms"]?.int ?? 0 }
        case Operation.error.rawValue:
            farewell = "ERROR " + Self.text(body, "code")
        default:
            break
        }
    }

    /// Closes the socket (RST when `reset`) and tells the owner, once.
    func close(_ reason: String, reset: Bool = false) {
        guard state != .closed else { return }
        let wasOnline = state == .online
        state = .closed
        owner.loop.unregister(fd)
        Posix.close(fd, reset: reset)
        pending = []
        output = []
        owner.closed(self, wasOnline: wasOnline, reason: reason, reconnectAfter: reconnectAfter)
    }

    @inline(__always)
    private static func bigEndian32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
            | UInt32(bytes[offset + 3])
    }

    /// A string member of a JSON body, for close reasons.
    private static func text(_ body: UnsafeRawBufferPointer, _ name: String) -> String {
        (try? JSONParser.parse(body))?[name]?.stringValue ?? "?"
    }
}

import Glibc
import PushPosix

/// One keep-alive HTTP/1.1 connection of a pusher, with up to `depth` requests pipelined on it. Responses come
/// back in request order (HTTP/1.1 pipelining), so each one answers the oldest request in flight.
final class HTTPPushConnection: LoopHandler {
    /// A request on the wire.
    struct InFlight {
        var sentAt: UInt64
        /// Pushes in the request (a batch carries several).
        var pushes: Int
        /// Recipients of those pushes (a push to a list of users stores one message per user).
        var recipients: Int
        /// Fan-out: the message number.
        var message: Int
    }

    private unowned let owner: Pusher
    let fd: Int32
    private(set) var isConnected = false
    private(set) var isOpen = true
    /// Requests written or queued, oldest first, from `head` on.
    private var inFlight: [InFlight] = []
    private var head = 0
    /// Bytes the socket did not take yet.
    var output: [UInt8] = []
    private var pending: [UInt8] = []

    init(owner: Pusher, fd: Int32) {
        self.owner = owner
        self.fd = fd
    }

    var inFlightCount: Int { inFlight.count - head }

    /// Queues one request (its bytes already appended to `output` by the caller).
    func sent(_ request: InFlight) { inFlight.append(request) }

    func handleEvents(_ events: IOEvents) {
        if !isConnected {
            guard events.contains(.write) else { return }
            let error = Posix.pendingError(fd)
            guard error == 0 else { return fail("connect: \(Sockets.errnoName(error))") }
            isConnected = true
            owner.loop.setEvents(fd, .read)
            owner.connected(self)
            return
        }
        if events.contains(.write) { flush() }
        if events.contains(.read) && isOpen { readable() }
    }

    /// Writes what is queued; waits for writability if the socket does not take it all.
    func flush() {
        guard isOpen, isConnected, !output.isEmpty else { return }
        do {
            if case .done(let count) = try output.withUnsafeBytes({ try Posix.write(fd, from: $0) }) {
                output.removeFirst(count)
            }
        } catch {
            return fail("write: \(Sockets.errnoName(error))")
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
            return fail("read: \(Sockets.errnoName(error))")
        }
        guard count > 0 else { return fail("closed by the server") }
        let bytes = UnsafeRawBufferPointer(rebasing: scratch[..<count])
        if pending.isEmpty {
            let used = parse(bytes)
            if used < bytes.count && isOpen { pending = Array(bytes[used...]) }
        } else {
            pending.append(contentsOf: bytes)
            let used = pending.withUnsafeBytes { parse($0) }
            if isOpen { pending.removeFirst(used) }
        }
    }

    /// Handles every whole response at the start of `bytes`; returns how many bytes they used.
    private func parse(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while isOpen, let end = ByteScan.find("\r\n\r\n", in: bytes, from: offset) {
            let head = UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
            guard head.count > 12, let status = ByteScan.number(in: head, at: 9)?.value else {
                fail("malformed response")
                return bytes.count
            }
            let length =
                (ByteScan.member("Content-Length:", in: head) ?? ByteScan.member("content-length:", in: head))
                .map { Int($0) } ?? 0
            let bodyStart = end + 4
            guard bytes.count - bodyStart >= length else { break }
            guard self.head < inFlight.count else {
                fail("response without a request")
                return bytes.count
            }
            let request = inFlight[self.head]
            self.head += 1
            if self.head == inFlight.count {
                inFlight.removeAll(keepingCapacity: true)
                self.head = 0
            }
            owner.response(
                Int(status), UnsafeRawBufferPointer(rebasing: bytes[bodyStart..<(bodyStart + length)]), for: request)
            offset = bodyStart + length
        }
        return offset
    }

    /// Closes after a failure; the requests in flight count as failed.
    func fail(_ reason: String) {
        guard isOpen else { return }
        isOpen = false
        owner.loop.unregister(fd)
        Posix.close(fd)
        let lost = Array(inFlight[head...])
        inFlight = []
        head = 0
        output = []
        owner.connectionFailed(self, reason: reason, lost: lost)
    }

    func close() {
        guard isOpen else { return }
        isOpen = false
        owner.loop.unregister(fd)
        Posix.close(fd)
    }
}

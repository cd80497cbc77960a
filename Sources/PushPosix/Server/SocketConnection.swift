import Glibc
import PushCore

/// The I/O half shared by client and HTTP connections: reads into the loop's scratch buffer, a bounded
/// output queue flushed before the loop sleeps (writes batch up per iteration), partial writes resumed when
/// writable, and one close path, `close(_:)`. A connection that must close after a last message (ERROR, DISCONNECT,
/// an HTTP error) flushes it, half-closes, and drains input until the peer closes or a short linger ends, so
/// the peer reads the message instead of a reset.
///
/// A connection accepted on a TLS listener does all of it through its `TLSSession` (the handshake first, then
/// records; close_notify before the half-close), kept in the loop's side table by descriptor: the subclasses work
/// unchanged over TLS, and a plain connection pays nothing for it.
///
/// The descriptor itself is closed by the loop after the current callback (`EventLoop.closeLater`), as redis's
/// `freeClientAsync` does: a connection closed inside a fan-out or inside its own read callback stops at once
/// (no more reads, writes or deliveries: it is not `isOpen`) while its descriptor number stays taken, so no new
/// connection can reuse it while a stale reference is still on the stack.
open class SocketConnection: LoopHandler {
    public enum Phase: UInt8 {
        case open
        /// Flushing the last output before closing.
        case draining
        /// Output sent and half-closed; discarding input until EOF or the linger ends.
        case lingering
        /// Done: no more events or writes; the loop closes the descriptor after the current callback.
        case closed
    }

    /// How long a closing connection may take to read its last message.
    public static let lingerTicks = EventLoop.ticks(2)

    // Stored properties are laid out in this order, one object per connection: 4-byte fields in pairs and the
    // 1-byte ones last, so no padding is wasted (the idle-connection memory target is counted in bytes). The six
    // 1-byte fields end at byte 62 of the object; the subclasses' first field is 8-byte aligned at 64 either way.
    public final let fd: Int32
    public final let generation: UInt32
    public final unowned(unsafe) let loop: EventLoop
    /// Ticks: when the last bytes arrived.
    public final var lastActive: UInt32
    /// Ticks: when the connection opened, or started closing.
    public final private(set) var since: UInt32
    private final var output: [UInt8] = []
    private final var outputOffset = 0
    public final private(set) var phase = Phase.open
    final var queuedForFlush = false
    /// What a closing connection is counted as, kept while it lingers (the rest of the reason was said).
    private final var closeKind = CloseReason.Kind.peerClosed
    /// The last write found the socket full: `.write` is watched until it drains.
    private final var writeBlocked = false
    /// Input is not read (`pauseReads`) until `resumeReads`; output still flows.
    public final private(set) var readsPaused = false
    /// Accepted on a TLS listener: its `TLSSession` is in `loop.tlsSessions` under `fd` until the close.
    public final internal(set) var isTLS = false

    public init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
        generation = loop.makeGeneration()
        lastActive = loop.now
        since = lastActive
    }

    // MARK: - For subclasses

    /// Bytes arrived: a slice of the loop's scratch buffer, valid during the call only (the WebSocket connection
    /// unmasks them in place).
    open func received(_ bytes: UnsafeRawBufferPointer) {}

    /// The tick at which an open connection times out.
    open var openDeadline: UInt32 { .max }

    /// An open connection reached `openDeadline`.
    open func openTimedOut() {}

    /// The connection starts closing for `reason`: called once, before `didClose`, so indexes stop counting it at
    /// once rather than after the linger. Queues what the peer is told last; returns whether queued output is
    /// flushed (and the connection lingers) before the descriptor closes, or dropped with it now.
    open func closing(_ reason: CloseReason) -> Bool { false }

    /// The connection closed and its descriptor is gone (after the callback that closed it). `reason` is the
    /// kind it closed for, without the notice (that was said).
    open func didClose(_ reason: CloseReason) {}

    /// All queued output was written (the queue is empty) while the connection is open.
    open func outputDrained() {}

    /// Most bytes that may wait in the output queue.
    open var maxOutput: Int { .max }

    /// Whether this connection's output skips ahead of a fan-out being written in slices: few connections, each
    /// waiting for an answer (the HTTP API's backends), where the fan-out's receivers are many.
    open var flushesFirst: Bool { false }

    // MARK: - Output

    /// Bytes waiting to be written.
    public final var pendingOutput: Int { output.count - outputOffset }

    /// Appends to the output queue through `write`; the queue is flushed before the loop sleeps. Past
    /// `maxOutput` the connection is closed (`write_queue_full`) and false is returned.
    @discardableResult
    public final func enqueue(_ write: (inout [UInt8]) -> Void) -> Bool {
        guard phase == .open || phase == .draining else { return false }
        let before = output.count
        write(&output)
        loop.queuedOutputBytes += output.count - before
        if pendingOutput > maxOutput {
            close(.writeQueueFull)
            return false
        }
        if !queuedForFlush {
            queuedForFlush = true
            loop.scheduleFlush(self)
        }
        return true
    }

    /// Sends what is queued, then closes with `reason` (see the type's comment), whatever `closing` says: for
    /// connections whose last message is ordinary output (an HTTP answer). Client connections say theirs in
    /// `closing`.
    public final func closeAfterOutput(_ reason: CloseReason) {
        guard phase == .open else { return }
        begin(reason, flushing: true)
    }

    /// Writes as much queued output as the socket takes now.
    public final func flush() {
        queuedForFlush = false
        guard phase == .open || phase == .draining else { return }
        // Before the TLS handshake is done nothing can be sent: the output waits for it (`handleTLS`).
        if isTLS, tlsSession?.established != true { return }
        while outputOffset < output.count {
            let result: IOResult<Int>
            do {
                result = try output.withUnsafeBytes {
                    let bytes = UnsafeRawBufferPointer(rebasing: $0[outputOffset...])
                    return isTLS ? try tlsWrite(bytes) : try Posix.write(fd, from: bytes)
                }
            } catch {
                close(.ioError)
                return
            }
            switch result {
            case .done(let count):
                outputOffset += count
                loop.queuedOutputBytes -= count
            case .wouldBlock:
                // The written front is dropped once it is most of the buffer: a peer that reads slowly keeps the
                // queue partly written for good, and appends must not grow it past what is still owed.
                if outputOffset >= 64 * 1024 && outputOffset * 2 >= output.count {
                    output.removeFirst(outputOffset)
                    outputOffset = 0
                }
                writeBlocked = true
                loop.setEvents(fd, phase == .open ? openEvents : drainEvents)
                return
            }
        }
        // All written: release the buffer, so an idle connection holds none.
        output = []
        outputOffset = 0
        writeBlocked = false
        if phase == .draining {
            // close_notify first; a socket too full for it keeps the connection draining until it goes out.
            if isTLS, let session = tlsSession, !session.shutdown() {
                writeBlocked = true
                loop.setEvents(fd, drainEvents)
                return
            }
            Posix.shutdownWrite(fd)
            phase = .lingering
            loop.setEvents(fd, .read)
        } else {
            loop.setEvents(fd, openEvents)
            outputDrained()
        }
    }

    /// The events an open connection watches: reads unless paused, writes while the socket is full. Over TLS, what
    /// each direction's last SSL call waits for (and the handshake's, until it is done).
    private final var openEvents: IOEvents {
        if isTLS, let session = tlsSession {
            guard session.established else { return session.handshakeWaits }
            return (readsPaused ? [] : session.readWaits).union(writeBlocked ? session.writeWaits : [])
        }
        return IOEvents(
            rawValue: (readsPaused ? 0 : IOEvents.read.rawValue) | (writeBlocked ? IOEvents.write.rawValue : 0))
    }

    /// The events a draining connection watches: writes (over TLS, what its last write waits for).
    private final var drainEvents: IOEvents {
        isTLS ? tlsSession?.writeWaits ?? .write : .write
    }

    /// Stops reading input until `resumeReads` (the peer's bytes wait in the kernel, which then stops the peer).
    public final func pauseReads() {
        guard !readsPaused else { return }
        readsPaused = true
        if phase == .open { loop.setEvents(fd, openEvents) }
    }

    public final func resumeReads() {
        guard readsPaused else { return }
        readsPaused = false
        guard phase == .open else { return }
        loop.setEvents(fd, openEvents)
        // Plaintext OpenSSL holds already: no readiness event would come for it.
        if isTLS, tlsSession?.hasBufferedInput == true { loop.feedRead(fd) }
    }

    // MARK: - Events

    public final func handleEvents(_ events: IOEvents) {
        if isTLS { return handleTLS(events) }
        if events.contains(.write) { flush() }
        if events.contains(.read) { readAvailable() }
    }

    private final func readAvailable() {
        // A few reads per wakeup at most, so one fast sender cannot starve the others.
        for _ in 0..<4 {
            guard phase != .closed, !(readsPaused && phase == .open) else { return }
            let buffer = loop.scratch
            let count: Int
            // Whether more may be readable at once (the buffer filled up).
            let more: Bool
            do {
                if isTLS {
                    switch try tlsRead(into: buffer) {
                    case .wouldBlock: return
                    case .end: (count, more) = (0, false)
                    case .data(let n, let again): (count, more) = (n, again)
                    }
                } else {
                    switch try Posix.read(fd, into: buffer) {
                    case .wouldBlock: return
                    case .done(let n): (count, more) = (n, n == buffer.count)
                    }
                }
            } catch {
                close(.ioError)  // a closing connection keeps the kind it closes for
                return
            }
            if count == 0 {
                close(.peerClosed)
                return
            }
            guard phase == .open else { continue }  // closing: discard
            lastActive = loop.now
            received(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            if !more || readsPaused { return tlsReadLaterIfBuffered() }
        }
        tlsReadLaterIfBuffered()
    }

    public final var deadline: UInt32 {
        switch phase {
        case .open: isTLS ? min(openDeadline, tlsHandshakeDeadline) : openDeadline
        case .draining, .lingering: since &+ Self.lingerTicks
        case .closed: .max
        }
    }

    public final func timedOut() {
        switch phase {
        case .open:
            // A TLS handshake not done in time: nothing can be said over it, so the close is silent.
            if isTLS && tlsHandshakeDeadline <= loop.now { return close(CloseReason(.handshakeTimeout)) }
            openTimedOut()
        case .draining, .lingering: close(CloseReason(closeKind))
        case .closed: break
        }
    }

    // MARK: - Close

    /// The one close path. An open connection starts closing: `closing` says its last words and leaves the
    /// indexes, then it lingers or is done. A closing one (EOF or an error while it lingers, the linger's end) is
    /// done, counted as what it first closed for. Done: no more events, output dropped, and the descriptor closed by
    /// the loop after the current callback (see the type's comment).
    public final func close(_ reason: CloseReason) {
        switch phase {
        case .open: begin(reason, flushing: false)
        case .draining, .lingering: finish()
        case .closed: break
        }
    }

    private final func begin(_ reason: CloseReason, flushing: Bool) {
        closeKind = reason.kind
        // No longer open before the last words are queued: an overflow while queueing them ends in `finish`.
        phase = .draining
        let flushes = closing(reason) || flushing
        guard phase == .draining else { return }
        // Before the TLS handshake is done there is no channel for last words.
        guard flushes, !isTLS || tlsSession?.established == true else { return finish() }
        since = loop.now
        // The linger deadline is earlier than the one the wheel holds this connection for: file it again.
        loop.scheduleTimeout(fd, self)
        // Written now, so a peer that half-closed right after its last frame still reads the answer: the read loop
        // that follows finds EOF only once it is out. A write that fails ends in `finish` (the descriptor is still
        // closed later).
        flush()
    }

    private final func finish() {
        phase = .closed
        loop.queuedOutputBytes -= pendingOutput
        output = []
        outputOffset = 0
        // The SSL object goes now; the descriptor stays taken until `descriptorClosed`, so no other connection can
        // be filed under the same key meanwhile.
        if isTLS { loop.tlsSessions[fd] = nil }
        loop.unregister(fd)
        loop.closeLater(self)
    }

    /// Called by the loop after the callback that closed this connection.
    final func descriptorClosed() {
        Posix.close(fd)
        didClose(CloseReason(closeKind))
    }

    public final var isOpen: Bool { phase == .open }

    // MARK: - TLS

    private final var tlsSession: TLSSession? { loop.tlsSessions[fd] }

    /// Events over TLS: the handshake until it is done (then the output queued meanwhile, and the input that came
    /// with it), then each direction when what its last SSL call waits for is ready.
    private final func handleTLS(_ events: IOEvents) {
        guard let session = tlsSession else { return }
        guard session.established else {
            guard phase == .open else { return }
            if session.awaitsClientHello && !loop.takeClientHello() { return loop.deferHandshake(self) }
            return stepHandshake(session)
        }
        if writeBlocked && !events.isDisjoint(with: session.writeWaits) { flush() }
        if !events.isDisjoint(with: session.readWaits) { readAvailable() }
    }

    /// One `SSL_do_handshake`; once the handshake is done, the output queued meanwhile and the input that came.
    private final func stepHandshake(_ session: TLSSession) {
        do {
            guard try session.handshake() else { return loop.setEvents(fd, session.handshakeWaits) }
        } catch {
            return close(error.reason(duringHandshake: true))
        }
        loop.setEvents(fd, openEvents)
        if pendingOutput > 0 { flush() }
        readAvailable()
    }

    /// A ClientHello put off by the loop (``EventLoop/deferHandshake(_:)``), now within an iteration's budget.
    final func resumeHandshake() {
        guard phase == .open, let session = tlsSession, !session.established else { return }
        stepHandshake(session)
    }

    private final func tlsRead(into buffer: UnsafeMutableRawBufferPointer) throws -> TLSSession.Read {
        guard let session = tlsSession else { return .end }
        return try session.read(into: buffer)
    }

    private final func tlsWrite(_ bytes: UnsafeRawBufferPointer) throws -> IOResult<Int> {
        guard let session = tlsSession else { throw SystemError(call: "SSL_write", errno: EBADF) }
        return try session.write(from: bytes)
    }

    /// A read that stopped with plaintext left inside OpenSSL (the buffer was short of a record, or reads paused):
    /// the loop calls the connection again, as no readiness event will.
    private final func tlsReadLaterIfBuffered() {
        guard isTLS, phase != .closed, !readsPaused, tlsSession?.hasBufferedInput == true else { return }
        loop.feedRead(fd)
    }

    /// The tick by which the TLS handshake must be done; `.max` once it is (or for a plain connection).
    private final var tlsHandshakeDeadline: UInt32 {
        guard let session = tlsSession, !session.established, let context = session.context else { return .max }
        return since &+ context.handshakeTicks
    }
}

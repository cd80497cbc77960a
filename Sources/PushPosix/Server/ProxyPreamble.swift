import Glibc
import PushCore

/// A client socket accepted behind a load balancer (`server.proxy_protocol`): reads the PROXY protocol header (v1 or
/// v2, SPEC §8) the balancer writes before the client's first byte, then hands the socket on with the client's
/// address from it, before any TLS or protocol byte is read.
///
/// The header is read with `MSG_PEEK` and only its own bytes are taken from the socket, so whatever follows it (a
/// ClientHello, a frame, an HTTP request) stays in the kernel for the connection that reads next: nothing read
/// here has to be handed over. A header that comes in pieces is taken as it comes (every byte before the end of
/// a header is header). A connection without a valid header is closed, as is one that sends nothing complete
/// within `timeout` ticks.
public final class ProxyPreamble: LoopHandler {
    /// What a preamble ended in, for the accept path's counters and log.
    public enum Outcome {
        /// The header came: `source` is the client's address (nil: the balancer's own connection, a v2 LOCAL health
        /// check or v1 UNKNOWN, whose peer address stands).
        case header(source: IPAddress?)
        /// No valid header: the descriptor is closed already. The reason is for the log.
        case refused(String)
    }

    public let fd: Int32
    public let generation: UInt32
    public let deadline: UInt32
    private unowned(unsafe) let loop: EventLoop
    private var taken: [UInt8] = []
    private let done: (Int32, Outcome) -> Void

    /// Watches freshly accepted `fd` until its header is read; then `done` gets it (unregistered from the loop, to
    /// adopt), or, when refused, its descriptor number after it was closed. False (and `fd` closed) when the loop has
    /// no room for it.
    @discardableResult
    public static func start(
        _ fd: Int32, loop: EventLoop, timeout: UInt32, done: @escaping (Int32, Outcome) -> Void
    ) -> Bool {
        let preamble = ProxyPreamble(fd: fd, loop: loop, deadline: loop.now &+ timeout, done: done)
        guard loop.register(fd, preamble, events: .read) else {
            Posix.close(fd)
            return false
        }
        loop.scheduleTimeout(fd, preamble)
        return true
    }

    private init(fd: Int32, loop: EventLoop, deadline: UInt32, done: @escaping (Int32, Outcome) -> Void) {
        self.fd = fd
        self.loop = loop
        self.deadline = deadline
        self.done = done
        generation = loop.makeGeneration()
    }

    public func handleEvents(_ events: IOEvents) {
        var peeked = [UInt8](repeating: 0, count: ProxyHeader.maxLength - taken.count)
        let count: Int
        do {
            switch try peeked.withUnsafeMutableBytes({ try Posix.peek(fd, into: $0) }) {
            case .wouldBlock: return
            case .done(let n): count = n
            }
        } catch {
            return refuse("read failed: \(error)")
        }
        guard count > 0 else { return refuse("closed before its PROXY header") }
        let seen = taken + peeked[..<count]
        switch ProxyHeader.parse(seen) {
        case .needMore:
            // All of it is header: take it, so the next readiness is for new bytes.
            guard take(count) else { return refuse("read failed") }
            taken = seen
        case .header(let source, _, let length):
            guard take(length - taken.count) else { return refuse("read failed") }
            loop.unregister(fd)
            done(fd, .header(source: source))
        case .invalid(let reason):
            refuse(reason)
        }
    }

    public func timedOut() { refuse("no PROXY header within the handshake timeout") }

    /// Takes `count` bytes that were peeked (they are there: a read of them does not block).
    private func take(_ count: Int) -> Bool {
        guard count > 0 else { return true }
        var sink = [UInt8](repeating: 0, count: count)
        let result = try? sink.withUnsafeMutableBytes { try Posix.read(fd, into: $0) }
        guard case .done(let n) = result, n == count else { return false }
        return true
    }

    private func refuse(_ reason: String) {
        loop.unregister(fd)
        Posix.close(fd)
        done(fd, .refused(reason))
    }
}

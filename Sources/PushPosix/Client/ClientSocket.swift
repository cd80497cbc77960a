import Glibc
import PushCore

/// What a `ClientSocket` tells its owner, from the socket's event handling on the loop.
protocol ClientSocketDelegate: AnyObject {
    /// Connected and, over TLS, the handshake done: bytes can be sent.
    func socketConnected(_ socket: ClientSocket)
    /// Bytes arrived: a slice of the loop's scratch buffer, valid during the call only.
    func socket(_ socket: ClientSocket, received bytes: UnsafeRawBufferPointer)
    /// Output that waited for the socket to drain is all written: there is room for more.
    func socketDrained(_ socket: ClientSocket)
    /// The connection failed or the peer closed it. The socket is closed already: this is its last call.
    func socket(_ socket: ClientSocket, failed failure: ClientSocket.Failure)
}

/// The client half of a TCP connection on the loop, with or without TLS: a non-blocking connect, the TLS handshake
/// (a client `TLSSession`: SNI, the peer verified for the host, ALPN), then bytes both ways through an output queue.
/// The owner appends to the queue and calls `flush()`; the socket watches `.write` only while the kernel is full.
///
/// `flush()` and `close()` never call the delegate: a failure found while the owner writes is thrown to it, so the
/// owner is never called back from inside its own call. The delegate is called from the loop's events only, and the
/// socket stops as soon as a delegate call closed it.
final class ClientSocket: LoopHandler {
    enum State {
        /// TCP connect in flight.
        case connecting
        /// TLS handshake in flight.
        case handshaking
        case open
        case closed
    }

    /// How the connection failed.
    enum Failure: Error, CustomStringConvertible {
        /// The TCP connect failed (refused, unreachable).
        case connect(SystemError)
        /// The TLS handshake failed (an alert, no protocol in common, the peer closed), in OpenSSL's words.
        case tls(String)
        /// The peer's certificate was refused: why, in OpenSSL's words.
        case certificate(String)
        /// A read or write failed once connected (reset by the peer, …).
        case io(String)
        /// The peer closed the connection.
        case closed

        var description: String {
            switch self {
            case .connect(let error): "\(error)"
            case .tls(let reason): "TLS handshake failed: \(reason)"
            case .certificate(let reason): "certificate refused: \(reason)"
            case .io(let reason): reason
            case .closed: "closed by the server"
            }
        }
    }

    let fd: Int32
    let address: SocketAddress
    /// Strong: the descriptor is unregistered from it when the socket goes, whatever goes first.
    private let loop: EventLoop
    weak var delegate: ClientSocketDelegate?
    private(set) var state = State.connecting
    private let tls: TLSSession?
    private var output: [UInt8] = []
    private var outputOffset = 0
    /// The last write found the socket full: `.write` (over TLS, what the write waits for) is watched.
    private var writeBlocked = false

    /// Starts connecting to `address`; with `tls`, the handshake follows, for `host` (SNI and the name checked).
    init(loop: EventLoop, address: SocketAddress, tls: (context: TLSClientContext, host: String)?) throws(Failure) {
        let connection: (fd: Int32, pending: Bool)
        do {
            connection = try Posix.connect(to: address)
        } catch let error as SystemError {
            throw .connect(error)
        } catch {
            throw .connect(SystemError(call: "connect \(address)", errno: EIO))
        }
        fd = connection.fd
        self.loop = loop
        self.address = address
        if let tls {
            guard let session = TLSSession(client: tls.context, fd: fd, host: tls.host) else {
                Posix.close(fd)
                throw .tls("cannot make a TLS session for \(tls.host): \(openSSLErrors())")
            }
            self.tls = session
        } else {
            self.tls = nil
        }
        // Writable once the connect is done (or failed): the first event, whether it is still pending or not.
        guard loop.register(fd, self, events: .write) else {
            Posix.close(fd)
            throw .connect(SystemError(call: "register fd \(fd) on the loop", errno: EMFILE))
        }
    }

    deinit { close() }

    /// The application protocol the server chose in ALPN (empty without TLS, or when it chose none).
    var alpnSelected: [UInt8] { tls?.alpnSelected ?? [] }

    // MARK: - Output

    /// Bytes queued and not written yet.
    var pendingOutput: Int { output.count - outputOffset }

    /// Appends to the output queue (written by `flush`).
    func append(_ bytes: UnsafeRawBufferPointer) { output.append(contentsOf: bytes) }

    /// Writes as much of the queue as the socket takes now. A failure closes the socket and is thrown (the delegate
    /// is not called).
    func flush() throws(Failure) {
        guard state == .open else { return }
        while outputOffset < output.count {
            let result: IOResult<Int>
            do {
                result = try output.withUnsafeBytes {
                    let bytes = UnsafeRawBufferPointer(rebasing: $0[outputOffset...])
                    return try tls.map { try $0.write(from: bytes) } ?? Posix.write(fd, from: bytes)
                }
            } catch {
                close(notify: false)
                throw .io(Self.describe(error))
            }
            switch result {
            case .done(let count): outputOffset += count
            case .wouldBlock:
                if outputOffset >= 64 * 1024 && outputOffset * 2 >= output.count {
                    output.removeFirst(outputOffset)
                    outputOffset = 0
                }
                writeBlocked = true
                watch()
                return
            }
        }
        output.removeAll(keepingCapacity: output.capacity <= 64 * 1024)
        outputOffset = 0
        if writeBlocked {
            writeBlocked = false
            watch()
        }
    }

    /// Closes the connection without calling the delegate; with `notify`, a TLS one after a best-effort close_notify
    /// (not on a connection that failed: OpenSSL writes with write(2), and a write to a reset peer would raise SIGPIPE
    /// in a process that does not ignore it). The descriptor is closed now: nothing of the loop refers to it once it
    /// is unregistered.
    func close(notify: Bool = true) {
        guard state != .closed else { return }
        if notify, state == .open, let tls { _ = tls.shutdown() }
        state = .closed
        output = []
        outputOffset = 0
        loop.unregister(fd)
        Posix.close(fd)
    }

    // MARK: - Events

    func handleEvents(_ events: IOEvents) {
        switch state {
        case .connecting: connectDone()
        case .handshaking: stepHandshake()
        case .open:
            if writeBlocked && !events.isDisjoint(with: tls?.writeWaits ?? .write) {
                do {
                    try flush()
                } catch {
                    return delegate?.socket(self, failed: error) ?? ()
                }
                if !writeBlocked { delegate?.socketDrained(self) }
            }
            if state == .open && !events.isDisjoint(with: tls?.readWaits ?? .read) { readAvailable() }
        case .closed: break
        }
    }

    private func connectDone() {
        let error = Posix.pendingError(fd)
        guard error == 0 else { return fail(.connect(SystemError(call: "connect \(address)", errno: error))) }
        if tls != nil {
            state = .handshaking
            stepHandshake()
        } else {
            becomeOpen()
        }
    }

    private func stepHandshake() {
        guard let tls else { return }
        do {
            guard try tls.handshake() else { return loop.setEvents(fd, tls.handshakeWaits) }
        } catch {
            if let refused = tls.verificationFailure { return fail(.certificate(refused)) }
            switch error {
            case .closed: return fail(.tls("the server closed the connection"))
            case .system(let code): return fail(.tls(String(cString: strerror(code))))
            case .tls(let reason): return fail(.tls(reason))
            }
        }
        becomeOpen()
    }

    private func becomeOpen() {
        state = .open
        watch()
        delegate?.socketConnected(self)
        // Over TLS the server's first bytes may have come with the handshake, inside OpenSSL already.
        if state == .open, tls?.hasBufferedInput == true { readAvailable() }
    }

    /// The events an open socket watches: reads always, writes while the kernel is full (over TLS, what each
    /// direction's last SSL call waits for).
    private func watch() {
        guard state == .open else { return }
        let reads = tls?.readWaits ?? .read
        loop.setEvents(fd, writeBlocked ? reads.union(tls?.writeWaits ?? .write) : reads)
    }

    private func readAvailable() {
        // A few reads per wakeup at most, so one busy connection cannot starve the others.
        for _ in 0..<4 {
            let buffer = loop.scratch
            var count = 0
            var more = false
            do {
                if let tls {
                    switch try tls.read(into: buffer) {
                    case .wouldBlock: return watch()
                    case .end: return fail(.closed)
                    case .data(let n, let again): (count, more) = (n, again)
                    }
                } else {
                    switch try Posix.read(fd, into: buffer) {
                    case .wouldBlock: return
                    case .done(0): return fail(.closed)
                    case .done(let n): (count, more) = (n, n == buffer.count)
                    }
                }
            } catch {
                return fail(.io(Self.describe(error)))
            }
            delegate?.socket(self, received: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            guard state == .open else { return }
            if !more { break }
        }
        watch()
        // Plaintext left inside OpenSSL: no readiness event would come for it.
        if tls?.hasBufferedInput == true { loop.feedRead(fd) }
    }

    private func fail(_ failure: Failure) {
        close(notify: false)
        delegate?.socket(self, failed: failure)
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case let failure as TLSSession.Failure:
            switch failure {
            case .closed: "closed by the server"
            case .system(let code): String(cString: strerror(code))
            case .tls(let reason): "TLS: \(reason)"
            }
        default: "\(error)"
        }
    }
}

import PushCore
import PushPosix

/// One phone's or browser's TCP connection: the socket half comes from `SocketConnection`, the protocol
/// state is a `ClientSession` value, and every decision that needs more than this connection goes to the
/// `ConnectionServer`. `WebSocketConnection` carries the same protocol in WebSocket binary messages: it
/// overrides `received`, `enqueueFrame` and `say`, and keeps its own state, so a TCP connection pays nothing for
/// it. Every close goes through `close(_:)` with a `CloseReason`, which says what the client is told last.
class ClientConnection: SocketConnection {
    // One of these per connection: the order packs the fields without padding (see SocketConnection), and what
    // few connections use (frames behind a pending AUTH, topics) lives in the server's side tables instead.
    unowned(unsafe) let server: ConnectionServer
    private var decoder = FrameDecoder()
    var session = ClientSession()
    /// Tick of the last session expiry refresh in Redis.
    var sessionRefreshedAt: UInt32 = 0
    /// Stored messages in seq order; paused until AUTH's replay is in.
    var delivery = OrderedDelivery<StoredMessage>(paused: true)
    /// The client's address, as limits, bans, logs and `conns` see it: the PROXY header's source behind a load
    /// balancer (`server.proxy_protocol`), else the socket's peer as `accept4` gave it. Kept here so that no check ever
    /// costs a `getpeername`: 16 bytes, which take the object from 177 to 200 bytes and its malloc chunk from 192 to
    /// 208 (BENCHMARKS.md, "Memory per idle authenticated connection").
    let address: IPAddress

    init(fd: Int32, server: ConnectionServer, address: IPAddress) {
        self.server = server
        self.address = address
        super.init(fd: fd, loop: server.loop)
    }

    override func received(_ bytes: UnsafeRawBufferPointer) {
        do {
            try decoder.feed(bytes, maxFrame: server.maxFrame) { frame in
                server.receive(frame, from: self)
                return isOpen && session.state != .closing
            }
        } catch let error as ProtocolError {
            close(.protocolError(error, operation: Operation(0), sequence: 0))
        } catch {
            close(.protocolError)  // `feed` throws only what the closure does, and it does not
        }
    }

    override var openDeadline: UInt32 {
        session.state == .handshake
            ? since &+ server.handshakeTicks
            : lastActive &+ server.idleTicks
    }

    override func openTimedOut() {
        close(session.state == .handshake ? .handshakeTimeout : .idleTimeout)
    }

    override var maxOutput: Int { server.maxWriteQueue }

    /// The close path's client half: input is no longer interpreted, the connection leaves every index at once (no
    /// delivery reaches it any more, even later in the fan-out that is closing it), the close is counted and
    /// logged, and the reason's last words are queued.
    override func closing(_ reason: CloseReason) -> Bool {
        session.closing()
        server.retire(self)
        let farewell = reason.farewell
        server.closing(self, reason, farewell)
        say(farewell)
        return farewell.flushes
    }

    override func didClose(_ reason: CloseReason) {
        server.connectionClosed(self)
    }

    /// Queues the last words: the ERROR or DISCONNECT frame. `WebSocketConnection` frames them its way.
    func say(_ farewell: CloseReason.Farewell) {
        if let frame = farewell.frame { send(frame) }
    }

    /// Queues one frame.
    @discardableResult
    final func send(_ frame: Frame) -> Bool {
        guard enqueueFrame(length: frame.encodedLength, { frame.encode(into: &$0) }) else { return false }
        server.stats.framesOut += 1
        return true
    }

    /// Queues bytes already framed (one encoding shared by every receiver of a push).
    @discardableResult
    final func send(encoded bytes: [UInt8]) -> Bool {
        guard enqueueFrame(length: bytes.count, { $0.append(contentsOf: bytes) }) else { return false }
        server.stats.framesOut += 1
        return true
    }

    /// Queues a goim room batch, `raw` being one RAW frame (op 9) whose body is the room's frames. On TCP the frames
    /// go out bare, as goim's comet writes a RAW's body unwrapped (`Proto.WriteTCP`): goim's TCP clients read the
    /// room's messages as frames of their own op. `WebSocketConnection` sends the RAW frame whole, as goim does.
    func send(roomBatch raw: [UInt8]) -> Bool {
        guard enqueue({ $0.append(contentsOf: raw[FrameLayout.headerLength...]) }) else { return false }
        server.stats.framesOut += 1
        return true
    }

    /// Queues one whole frame of `length` bytes that `write` appends: every frame to the client goes through
    /// here, so that a WebSocket connection can put each in a binary message of its own.
    func enqueueFrame(length: Int, _ write: (inout [UInt8]) -> Void) -> Bool {
        enqueue(write)
    }
}

import CLibev
import Glibc
import Logging
import PushCore

/// The connection server of one worker (SPEC §1): accepts client sockets, runs the handshake and heartbeats,
/// keeps the local user → connections index, and delivers frames to local connections.
final class ConnectionServer {
    let loop: EventLoop
    let config: GatewayConfiguration
    let logger: Logger
    let stats: WorkerStats

    let maxFrame: Int
    let maxWriteQueue: Int
    let handshakeTicks: UInt32
    let idleTicks: UInt32
    private let heartbeatSeconds: Int
    /// Verifies AUTH tokens when `auth.required`; nil in open mode (goim's behaviour: `mid` is trusted).
    private let tokens: TokenSigner?

    /// Authenticated connections by user.
    private(set) var users = UserIndex<ClientConnection>()
    /// Online connections per room (goim's rooms), for HEARTBEAT_REPLY.
    private var roomCounts: [String: Int] = [:]
    /// Connections accepted and not yet closed, authenticated or not.
    private(set) var connectionCount = 0

    init(loop: EventLoop, config: GatewayConfiguration, stats: WorkerStats, logger: Logger) {
        self.loop = loop
        self.config = config
        self.stats = stats
        self.logger = logger
        maxFrame = config.limits.maxFrame
        maxWriteQueue = config.limits.maxWriteQueue
        handshakeTicks = EventLoop.ticks(config.limits.handshakeTimeout)
        idleTicks = EventLoop.ticks(config.limits.idleTimeout)
        heartbeatSeconds = Int(config.limits.heartbeat.rounded(.up))
        tokens = config.auth.required ? config.auth.secret.map { TokenSigner(authenticator: OpenSSLHMAC(secret: $0)) } : nil
    }

    /// Takes a freshly accepted client socket.
    func accept(_ fd: Int32) {
        try? Posix.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        let connection = ClientConnection(fd: fd, server: self)
        guard loop.register(fd, connection, events: Int32(EV_READ)) else {
            Posix.close(fd)
            return
        }
        loop.scheduleTimeout(fd, connection)
        connectionCount += 1
        stats.accepted += 1
    }

    // MARK: - Frames from clients

    func handle(_ frame: Frame, from connection: ClientConnection) {
        stats.framesIn += 1
        switch connection.session.receive(frame) {
        case .none:
            break
        case .reply(let reply):
            connection.send(reply)
        case .authenticate(let request, let sequence):
            authenticate(connection, request, sequence: sequence)
        case .heartbeat(let sequence):
            var body: [UInt8] = []
            body.appendBigEndian(UInt32(clamping: connection.session.room.map { roomCounts[$0] ?? 0 } ?? 0))
            connection.send(Frame(.heartbeatReply, sequence: sequence, body: body))
        case .roomChanged(let from, let to, let reply):
            leaveRoom(from)
            joinRoom(to)
            connection.send(reply)
        case .forward(let frame):
            // ACK, SYNC and READ need the message server, SUB and UNSUB the topic router: not in this build.
            connection.fail(.notSupported(frame.operation), operation: frame.operation, sequence: frame.sequence)
        case .fail(let error, let operation, let sequence):
            logger.debug(
                "protocol error", metadata: ["fd": "\(connection.fd)", "code": "\(error.code)", "op": "\(operation)"])
            connection.fail(error, operation: operation, sequence: sequence)
        }
    }

    private func authenticate(_ connection: ClientConnection, _ request: AuthRequest, sequence: UInt32) {
        var tokenDevice: String?
        if let tokens {
            do {
                let claims = try tokens.verify(
                    request.token ?? "", user: request.user, device: request.key, now: UInt64(time(nil)))
                tokenDevice = claims.device
            } catch {
                logger.debug("token refused", metadata: ["fd": "\(connection.fd)", "uid": "\(request.user)", "code": "\(error.code)"])
                connection.fail(.authFailed("\(error.code): \(error.message)"), operation: .auth, sequence: sequence)
                return
            }
        }
        let key = request.key ?? tokenDevice ?? Self.makeDeviceKey()
        connection.session.online(request, key: key)
        users.add(connection, user: request.user)
        joinRoom(request.room)
        stats.authenticated += 1
        var reply = JSONWriter()
        reply.object {
            $0.field("code", 0)
            $0.field("key", key)
            $0.field("heartbeat", heartbeatSeconds)
            $0.field("unread", 0)
            $0.field("last_seq", 0)
        }
        connection.send(Frame(.authReply, sequence: sequence, body: reply.bytes))
        logger.debug("authenticated", metadata: ["fd": "\(connection.fd)", "uid": "\(request.user)", "key": "\(key)"])
    }

    /// A device key for a client that gave none: 15 random base32 characters, short enough to be stored
    /// inline in a Swift string.
    static func makeDeviceKey() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        var random = SystemRandomNumberGenerator()
        return String(decoding: (0..<15).map { _ in alphabet[Int(random.next() & 31)] }, as: UTF8.self)
    }

    private func joinRoom(_ room: String?) {
        guard let room else { return }
        roomCounts[room, default: 0] += 1
    }

    private func leaveRoom(_ room: String?) {
        guard let room, let count = roomCounts[room] else { return }
        roomCounts[room] = count > 1 ? count - 1 : nil
    }

    func connectionClosed(_ connection: ClientConnection, reason: CloseReason) {
        connectionCount -= 1
        stats.closed(reason)
        if connection.session.state != .handshake || !connection.session.user.isEmpty {
            users.remove(connection, user: connection.session.user)
            leaveRoom(connection.session.room)
        }
        logger.debug(
            "connection closed",
            metadata: ["fd": "\(connection.fd)", "uid": "\(connection.session.user)", "reason": "\(reason.rawValue)"])
    }

    // MARK: - Delivery

    /// Delivers an application message to every local connection of `user` that accepts `operation`;
    /// returns how many connections the user has here and how many got it.
    func deliver(_ encoded: [UInt8], operation: Operation, toUser user: String, device: String? = nil) -> (online: Int, delivered: Int) {
        var online = 0
        var delivered = 0
        users.forEach(of: user) { connection in
            if let device, connection.session.key != device { return }
            online += 1
            guard connection.session.accepts(operation), connection.isOpen else { return }
            if connection.send(encoded: encoded) { delivered += 1 }
        }
        stats.delivered += delivered
        return (online, delivered)
    }

    /// Delivers to every authenticated local connection that accepts `operation`.
    func deliverToAll(_ encoded: [UInt8], operation: Operation) -> Int {
        var delivered = 0
        users.forEachConnection { connection in
            guard connection.session.accepts(operation), connection.isOpen else { return }
            if connection.send(encoded: encoded) { delivered += 1 }
        }
        stats.delivered += delivered
        return delivered
    }
}

import Glibc
import PushCore
import PushPosix

/// AUTH (SPEC §2): the token checked, the connection indexed as its user's, then one round trip to Redis that
/// registers the session, reads the counters and fetches what the device missed; AUTH_REPLY and the replay follow.
extension ConnectionServer {
    func authenticate(_ connection: ClientConnection, _ request: AuthRequest, sequence: UInt32) {
        var tokenDevice: String?
        if let tokens {
            do {
                let claims = try tokens.verify(
                    request.token ?? "", user: request.user, device: request.key, now: Posix.wallSeconds())
                tokenDevice = claims.device
            } catch {
                logger.debug("token refused", metadata: ["fd": "\(connection.fd)", "uid": "\(request.user)", "code": "\(error.code)"])
                connection.close(
                    .protocolError(.authFailed("\(error.code): \(error.message)"), operation: .auth, sequence: sequence))
                return
            }
        }
        let key = request.key ?? tokenDevice ?? Self.makeDeviceKey()
        if let ban = sessionBan(connection, user: request.user, key: key) {
            stats.bannedAtAuth += 1
            logger.debug(
                "AUTH refused: banned",
                metadata: ["fd": "\(connection.fd)", "uid": "\(request.user)", "ban": "\(ban.id)"])
            connection.close(.bannedAtAuth(until: ban.expiresAt, sequence: sequence))
            return
        }
        connection.session.authenticating(request, key: key)
        users.add(connection, user: request.user)
        byKey[key] = connection
        if let room = request.room { rooms.join(connection, room) }

        let call = SessionCall(
            uid: request.user, device: key, node: store.node, platform: request.platform,
            nowSeconds: Posix.wallSeconds(), ttl: sessionTTL, lastSeq: request.lastSeq, limit: config.inbox.max,
            presenceStream: presenceStream(request.user))
        // Connections are captured strongly (until the reply, at most the Redis timeout): a weak reference would
        // give every connection object a side table for the rest of its life (memory, and slower retains).
        store.runSessionScript(call) { [weak self] result in
            guard let self else { return }
            // Unknown (Redis did not answer) counts as remote: routing through Redis is never wrong.
            if (try? result.get())?.remote ?? true, self.users.count(of: request.user) > 0 {
                self.noteSessionElsewhere(request.user)
            }
            guard connection.isOpen else { return }
            switch result {
            case .success(let session):
                connection.session.authenticated()
                self.online(connection, request, key: key, session: session, sequence: sequence)
            case .failure(let error):
                self.held[ObjectIdentifier(connection)] = nil
                self.logger.warning("AUTH could not reach storage", metadata: ["uid": "\(request.user)", "error": "\(error)"])
                connection.close(.storageUnavailable(afterMillis: UInt32.random(in: 1000...5000)))
            }
        }
    }

    /// Holds a frame that came behind AUTH until Redis answers it; too many is a fatal bad_auth.
    func hold(_ frame: Frame, from connection: ClientConnection) {
        let id = ObjectIdentifier(connection)
        guard held[id, default: []].count < Self.maxHeld else {
            connection.close(
                .protocolError(
                    .badAuth("too many frames before AUTH_REPLY"), operation: frame.operation, sequence: frame.sequence))
            return
        }
        held[id, default: []].append(frame)
    }

    private func online(
        _ connection: ClientConnection, _ request: AuthRequest, key: String, session: SessionResult, sequence: UInt32
    ) {
        stats.authenticated += 1
        connection.sessionRefreshedAt = loop.now
        var reply = JSONWriter()
        reply.object {
            $0.field("code", 0)
            $0.field("key", key)
            $0.field("heartbeat", heartbeatSeconds)
            $0.field("unread", session.unread)
            $0.field("last_seq", session.seq)
        }
        connection.send(Frame(.authReply, sequence: sequence, body: reply.bytes))

        // Replay from the device's last_seq (what Redis still keeps), then whatever arrived meanwhile, in order.
        // A device that gave no last_seq starts with the next message.
        var start = session.seq
        if request.lastSeq != nil, let first = session.messages.first { start = first.seq - 1 }
        delivery.resume(connection, with: session.messages, after: start)
        logger.debug("authenticated", metadata: ["fd": "\(connection.fd)", "uid": "\(request.user)", "key": "\(key)"])

        let frames = held.removeValue(forKey: ObjectIdentifier(connection)) ?? []
        for frame in frames where connection.isOpen { handle(frame, from: connection) }
    }

    /// A device key for a client that gave none: 15 random base32 characters, short enough to be stored
    /// inline in a Swift string.
    static func makeDeviceKey() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        var random = SystemRandomNumberGenerator()
        return String(decoding: (0..<15).map { _ in alphabet[Int(random.next() & 31)] }, as: UTF8.self)
    }
}

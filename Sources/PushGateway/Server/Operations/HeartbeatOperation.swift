import PushCore
import PushPosix

/// HEARTBEAT (SPEC §2): HEARTBEAT_REPLY with the room's online count, and the session's expiry in Redis pushed on.
extension ConnectionServer {
    func heartbeat(_ connection: ClientConnection, sequence: UInt32) {
        var body: [UInt8] = []
        let count = connection.session.room.map { max(rooms.count($0), roomCountsAcrossNodes[$0] ?? 0) } ?? 0
        body.appendBigEndian(UInt32(clamping: count))
        connection.send(Frame(.heartbeatReply, sequence: sequence, body: body))
        refreshSession(connection)
    }

    /// Pushes the session hash's expiry forward once half of it is gone (at most once per connection per
    /// half-TTL, piggybacking on heartbeats).
    private func refreshSession(_ connection: ClientConnection) {
        let now = loop.now
        guard now &- connection.sessionRefreshedAt >= sessionRefreshTicks else { return }
        connection.sessionRefreshedAt = now
        store.command(["EXPIRE", RedisKeys.sessions(connection.session.user), String(sessionTTL)])
    }
}

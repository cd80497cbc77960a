import PushCore

/// Bans applied to client connections (SPEC §8): a banned address is closed at accept
/// (`ConnectionServer+Accept.swift`), a banned session gets ERROR `banned` at AUTH, and connections already open that
/// a new ban covers get DISCONNECT `banned` with `reconnect: false`. The list itself is kept by the worker's
/// `EdgeState`.
extension ConnectionServer {
    /// The client's address as bans see it: the PROXY header's source behind a load balancer, else the socket's
    /// peer, kept since the accept (no system call).
    func clientAddress(of connection: ClientConnection) -> IPAddress {
        connection.address
    }

    /// At AUTH: the ban that refuses `user` on device `key` from this connection's address, if any.
    func sessionBan(_ connection: ClientConnection, user: String, key: String) -> Ban? {
        guard !bans.isEmpty else { return nil }
        return bans.bansSession(ip: clientAddress(of: connection), user: user, device: key, now: EdgeState.now())
    }

    /// The list changed: keeps it, and sends DISCONNECT `banned` to every open connection one of `added` covers.
    /// One pass over this worker's authenticated connections (only the named users' when every new ban names a
    /// user); a connection still in its handshake meets the ban at AUTH.
    func applyBans(_ list: BanList, added: [Ban]) {
        bans = list
        let now = EdgeState.now()
        let fresh = BanList(added.filter { !$0.isExpired(now: now) })
        guard !fresh.isEmpty else { return }
        var covered: [ClientConnection] = []
        let check = { (connection: ClientConnection) in
            guard connection.isOpen, connection.session.state != .closing else { return }
            let ip = self.clientAddress(of: connection)
            let session = connection.session
            if fresh.bansSession(ip: ip, user: session.user, device: session.key, now: now) != nil {
                covered.append(connection)
            }
        }
        if added.allSatisfy({ $0.user != nil }) {
            for user in Set(added.compactMap(\.user)) { users.forEach(of: user, check) }
        } else {
            users.forEachConnection(check)
        }
        for connection in covered where connection.isOpen {
            stats.bannedDisconnects += 1
            connection.close(.banned)
        }
        if !covered.isEmpty { logger.info("banned connections disconnected", metadata: ["count": "\(covered.count)"]) }
    }

    /// `::`, for a socket `accept4` gave no IP address for (never on the TCP listeners): only a ban of `::/0`
    /// covers it.
    static let unknownAddress = IPAddress(high: 0, low: 0)
}

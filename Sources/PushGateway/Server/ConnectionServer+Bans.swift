import PushCore
import PushPosix

/// Bans applied to client connections (SPEC §8): a banned address is closed at accept, a banned session gets
/// ERROR `banned` at AUTH, and connections already open that a new ban covers get DISCONNECT `banned` with
/// `reconnect: false`. The list itself is kept by the worker's `EdgeState`.
extension ConnectionServer {
    /// The client's address as bans see it: the socket's peer. (Behind a PROXY protocol load balancer this is
    /// where the header's address belongs.) Nil when the socket is no longer connected.
    func clientAddress(of connection: ClientConnection) -> IPAddress? {
        Posix.peerAddress(connection.fd)
    }

    /// At accept: closes a connection from a banned address at once, saying nothing. No system call is made
    /// while no ban is on addresses alone.
    func refuseIfBanned(_ connection: ClientConnection) {
        guard bans.hasAddressBans, let address = clientAddress(of: connection),
            bans.bansAddress(address, now: EdgeState.now()) != nil
        else { return }
        stats.bannedAtAccept += 1
        connection.close(.bannedAddress)
    }

    /// At AUTH: the ban that refuses `user` on device `key` from this connection's address, if any.
    func sessionBan(_ connection: ClientConnection, user: String, key: String) -> Ban? {
        guard !bans.isEmpty else { return nil }
        return bans.bansSession(ip: address(for: connection, in: bans), user: user, device: key, now: EdgeState.now())
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
            let ip = self.address(for: connection, in: fresh)
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

    /// The address a session check against `list` uses: the peer's when a ban of the list names addresses, else a
    /// placeholder no ban looks at (no system call).
    private func address(for connection: ClientConnection, in list: BanList) -> IPAddress {
        guard list.namesAddresses else { return Self.unknownAddress }
        return clientAddress(of: connection) ?? Self.unknownAddress
    }

    /// `::`, for a connection whose peer is gone (it is closing anyway): only a ban of `::/0` covers it.
    static let unknownAddress = IPAddress(high: 0, low: 0)
}

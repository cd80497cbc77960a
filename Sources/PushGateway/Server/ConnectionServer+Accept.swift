import PushCore
import PushPosix

/// How a client socket becomes a connection (SPEC §8). With `server.proxy_protocol` the load balancer's PROXY header
/// is read first (`ProxyPreamble`, before any TLS or protocol byte), within `limits.handshake_timeout`, and gives the
/// client's address; otherwise the address is the socket's peer. Then, on that address: a ban, this worker's share
/// of `limits.connect_rate` and of `limits.max_conns_per_ip`. A socket refused by any of them is closed at once,
/// without a word and before a connection object exists, so a flood costs an accept and a close.
///
/// Every accepted socket is counted once in `accepted` and once among the closes: refused ones here (`banned`,
/// `refused`, `proxy_refused`), the others when their connection closes.
extension ConnectionServer {
    /// Takes a freshly accepted client socket from the TCP listener (`tls`: the TLS one); `peer` is what `accept4`
    /// said.
    func accept(_ fd: Int32, peer: IPAddress?, tls: TLSContext? = nil) {
        accept(fd, peer: peer, webSocket: false, tls: tls)
    }

    /// Takes a freshly accepted client socket from the WebSocket listener (`tls`: the WSS one).
    func acceptWebSocket(_ fd: Int32, peer: IPAddress?, tls: TLSContext? = nil) {
        accept(fd, peer: peer, webSocket: true, tls: tls)
    }

    private func accept(_ fd: Int32, peer: IPAddress?, webSocket: Bool, tls: TLSContext?) {
        stats.accepted += 1
        let peer = peer ?? Self.unknownAddress
        guard proxyProtocol else { return admit(fd, address: peer, webSocket: webSocket, tls: tls) }
        let started = ProxyPreamble.start(fd, loop: loop, timeout: handshakeTicks) { [unowned self] fd, outcome in
            switch outcome {
            case .header(let source):
                // LOCAL (the balancer's health check) and UNKNOWN name no client: the peer stands.
                admit(fd, address: source ?? peer, webSocket: webSocket, tls: tls)
            case .refused(let reason):
                stats.closed(.proxyRefused)
                logger.debug(
                    "connection refused: no PROXY header",
                    metadata: ["fd": "\(fd)", "peer": "\(peer)", "detail": "\(reason)"])
            }
        }
        if !started { stats.closed(.ioError) }  // no room in the loop's table: closed already
    }

    /// The socket of a client at `address`: refused at once, or made a connection and watched.
    private func admit(_ fd: Int32, address: IPAddress, webSocket: Bool, tls: TLSContext?) {
        if let refusal = refusal(of: address) {
            Posix.close(fd)
            stats.closed(refusal)
            logger.debug(
                "connection refused at accept",
                metadata: ["fd": "\(fd)", "addr": "\(address)", "reason": "\(refusal.rawValue)"])
            return
        }
        let connection =
            webSocket
            ? WebSocketConnection(fd: fd, server: self, address: address)
            : ClientConnection(fd: fd, server: self, address: address)
        guard loop.adopt(fd, connection, tls: tls) else {
            // Closed by `adopt`: the descriptor table is full.
            openPerAddress.decrement(address)
            stats.closed(.ioError)
            return
        }
        connectionCount += 1
    }

    /// Why a client at `address` is refused at accept, if it is; counts it. A ban first (nothing is spent on a banned
    /// address), then a token of the connect rate, then a place among the open connections, counted only when all
    /// passed (`connectionClosed` gives it back).
    private func refusal(of address: IPAddress) -> CloseReason.Kind? {
        if bans.hasAddressBans, bans.bansAddress(address, now: EdgeState.now()) != nil {
            stats.bannedAtAccept += 1
            return .banned
        }
        if !connectLimiter.limit.isUnlimited, !connectLimiter.take(address, now: Posix.monotonicNanos()) {
            stats.refusedConnectRate += 1
            return .refused
        }
        guard openPerAddress.increment(address) else {
            stats.refusedMaxConnsPerIP += 1
            return .refused
        }
        return nil
    }
}

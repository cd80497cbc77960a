import Glibc
import PushCore
import PushPosix
import Testing

/// Accepts the one connection queued on `listener`, waiting at most a second for it.
private func acceptOne(_ listener: Int32) throws -> Int32 {
    for _ in 0..<100 {
        if case .done(let fd) = try Posix.accept(listener) { return fd }
        usleep(10_000)
    }
    throw SystemError(call: "accept (nothing came)", errno: EAGAIN)
}

/// `Posix.peerAddress`, the address bans and `api.allow` compare: what `getpeername` says, as an `IPAddress`.
@Suite struct PeerAddressTests {
    /// A client bound to 127.0.0.2 is seen as 127.0.0.2 (the integration tests ban such addresses).
    @Test func ipv4() throws {
        let listener = try Posix.listen(host: "127.0.0.1", port: 0, ipv6: false)
        defer { Posix.close(listener) }
        let destination = try #require(Posix.ipv4Address("127.0.0.1", port: Int(Posix.localPort(listener))))
        let client = try Posix.connect(to: destination, from: Posix.ipv4("127.0.0.2"))
        defer { Posix.close(client.fd) }
        let accepted = try acceptOne(listener)
        defer { Posix.close(accepted) }
        #expect(Posix.peerAddress(accepted) == IPAddress("127.0.0.2"))
        #expect(Posix.peerAddress(accepted)?.isIPv4 == true)
    }

    /// `acceptWithPeer` gives the same address as `getpeername`, from `accept4` itself (the gateway's listeners).
    @Test func acceptGivesThePeer() throws {
        let listener = try Posix.listen(host: "127.0.0.1", port: 0, ipv6: false)
        defer { Posix.close(listener) }
        let destination = try #require(Posix.ipv4Address("127.0.0.1", port: Int(Posix.localPort(listener))))
        let client = try Posix.connect(to: destination, from: Posix.ipv4("127.0.0.3"))
        defer { Posix.close(client.fd) }
        var accepted: (fd: Int32, peer: IPAddress?)?
        for _ in 0..<100 where accepted == nil {
            if case .done(let result) = try Posix.acceptWithPeer(listener) { accepted = result } else { usleep(10_000) }
        }
        let result = try #require(accepted, "nothing to accept")
        defer { Posix.close(result.fd) }
        #expect(result.peer == IPAddress("127.0.0.3"))
        #expect(result.peer == Posix.peerAddress(result.fd))
        #expect(fcntl(result.fd, F_GETFL) & O_NONBLOCK != 0)
    }

    /// An IPv6 peer comes back as IPv6 (`::1`), matched by an IPv6 range; a descriptor that is not a connected
    /// socket gives nil.
    @Test func ipv6() throws {
        guard let listener = try? Posix.listen(host: "::1", port: 0, ipv6: true) else { return }  // no IPv6 here
        defer { Posix.close(listener) }
        let port = Posix.localPort(listener)
        let client = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(client) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        address.sin6_addr = in6addr_loopback
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(client, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
        try #require(connected == 0)
        let accepted = try acceptOne(listener)
        defer { Posix.close(accepted) }
        let peer = try #require(Posix.peerAddress(accepted))
        #expect(peer == IPAddress("::1") && !peer.isIPv4)
        #expect(try CIDR("::1/128").contains(peer) && !(try CIDR("127.0.0.0/8").contains(peer)))
        let (one, other) = try Posix.socketPair()
        defer {
            Posix.close(one)
            Posix.close(other)
        }
        #expect(Posix.peerAddress(one) == nil, "a Unix socket has no IP peer")
    }
}

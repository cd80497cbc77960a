import Glibc

/// An IPv4 or IPv6 socket address, as `getaddrinfo` gives it: what a client connects to.
public struct SocketAddress: CustomStringConvertible, Sendable {
    fileprivate var storage: sockaddr_storage
    fileprivate let length: socklen_t

    public var family: Int32 { Int32(storage.ss_family) }

    /// `1.2.3.4:443` or `[::1]:443`.
    public var description: String {
        var copy = storage
        return withUnsafePointer(to: &copy) { pointer in
            if family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    var address = $0.pointee.sin6_addr
                    return "[\(Self.text(AF_INET6, &address))]:\(UInt16(bigEndian: $0.pointee.sin6_port))"
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                var address = $0.pointee.sin_addr
                return "\(Self.text(AF_INET, &address)):\(UInt16(bigEndian: $0.pointee.sin_port))"
            }
        }
    }

    /// `inet_ntop`'s text for an `in_addr` or `in6_addr`.
    private static func text(_ family: Int32, _ address: UnsafeRawPointer) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN) + 1) { buffer in
            guard let text = inet_ntop(family, address, buffer.baseAddress, socklen_t(buffer.count)) else { return "?" }
            return String(cString: text)
        }
    }
}

/// A host name that did not resolve, in `getaddrinfo`'s words.
public struct ResolveError: Error, CustomStringConvertible {
    public let host: String
    public let message: String

    public var description: String { "cannot resolve \(host): \(message)" }
}

extension Posix {
    /// The TCP addresses of `host` (a name or an address literal) at `port`, IPv4 ones first (the origins the HTTP/2
    /// client calls all have them, and a host without IPv6 routes fails fast on an IPv6 address only after a timeout).
    ///
    /// A name is resolved with a blocking `getaddrinfo`, as hiredis does for Redis (see `RedisClient.connect`): the
    /// loop stalls for the lookup, once per connection attempt, so a client that reconnects often should be given an
    /// address. An address literal never blocks.
    public static func resolve(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        // No AI_ADDRCONFIG: a host whose only IPv4 address is loopback would get no IPv4 address for `localhost`.
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else {
            if status == EAI_SYSTEM { throw SystemError(call: "getaddrinfo \(host)", errno: errno) }
            throw ResolveError(host: host, message: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry = list
        while let info = entry {
            if let address = info.pointee.ai_addr, info.pointee.ai_addrlen <= MemoryLayout<sockaddr_storage>.size,
                info.pointee.ai_family == AF_INET || info.pointee.ai_family == AF_INET6
            {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) {
                    $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(info.pointee.ai_addrlen)))
                }
                addresses.append(SocketAddress(storage: storage, length: info.pointee.ai_addrlen))
            }
            entry = info.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw ResolveError(host: host, message: "no TCP address") }
        // Within a family, the resolver's order stands.
        return addresses.filter { $0.family == AF_INET } + addresses.filter { $0.family == AF_INET6 }
    }

    /// Starts a non-blocking, close-on-exec TCP connection to `address`, without Nagle's delay. Returns the descriptor
    /// and whether the handshake is still in flight (EINPROGRESS: watch for `.write`, then read `pendingError`).
    public static func connect(to address: SocketAddress) throws -> (fd: Int32, pending: Bool) {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(address.family, type, 0)
        guard fd >= 0 else { throw SystemError(call: "socket", errno: errno) }
        try? setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        var storage = address.storage
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, address.length) }
        }
        if result == 0 { return (fd, false) }
        let error = errno
        if error == EINPROGRESS || error == EINTR { return (fd, true) }
        Glibc.close(fd)
        throw SystemError(call: "connect \(address)", errno: error)
    }
}

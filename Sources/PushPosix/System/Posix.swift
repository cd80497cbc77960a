import CSystem
import Glibc
import PushCore

/// A failed system call: which call and its errno.
public struct SystemError: Error, CustomStringConvertible {
    /// The call, with what it was called on where that helps (`bind 0.0.0.0:3101`).
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The result of a non-blocking call that may have nothing to do.
public enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

/// Every syscall the gateway and the bench make goes through here: EINTR is retried, EAGAIN comes back as
/// `.wouldBlock`, other failures are thrown as `SystemError`.
public enum Posix {
    /// Creates a non-blocking, close-on-exec TCP listener on `address` with SO_REUSEADDR and SO_REUSEPORT
    /// (so that several workers can share the port), and returns its descriptor.
    public static func listen(host: String, port: UInt16, ipv6: Bool, backlog: Int32 = 4096) throws -> Int32 {
        let family = ipv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(call: "socket", errno: errno) }
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1)
            if ipv6 { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            try withSocketAddress(host: host, port: port, ipv6: ipv6) { address, length in
                guard bind(fd, address, length) == 0 else { throw SystemError(call: "bind \(host):\(port)", errno: errno) }
            }
            guard Glibc.listen(fd, backlog) == 0 else { throw SystemError(call: "listen", errno: errno) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Whether `host:port` is free of listeners: binds a socket with SO_REUSEADDR but without SO_REUSEPORT (never
    /// listening, so no connection is ever queued on it) and closes it. Linux refuses that bind with EADDRINUSE
    /// while any socket listens there, SO_REUSEPORT or not: another gateway's workers included.
    public static func checkAddressFree(host: String, port: UInt16, ipv6: Bool) throws {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(call: "socket", errno: errno) }
        defer { Glibc.close(fd) }
        try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
        if ipv6 { try setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
        try withSocketAddress(host: host, port: port, ipv6: ipv6) { address, length in
            guard bind(fd, address, length) == 0 else { throw SystemError(call: "bind \(host):\(port)", errno: errno) }
        }
    }

    /// The port a socket is bound to (for listeners started on port 0).
    public static func localPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { return 0 }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    /// Accepts one connection as a non-blocking, close-on-exec socket.
    public static func accept(_ listener: Int32) throws -> IOResult<Int32> {
        while true {
            let fd = accept4(listener, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            if fd >= 0 { return .done(fd) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            // The peer gave up before we accepted: nothing to do, try the next one.
            case ECONNABORTED, EPROTO: continue
            default: throw SystemError(call: "accept4", errno: errno)
            }
        }
    }

    /// Accepts one connection as a non-blocking, close-on-exec socket, with its peer's address as `peerAddress` gives
    /// it (nil for a socket that is not IP): `accept4` fills it in, so knowing it costs no system call.
    public static func acceptWithPeer(_ listener: Int32) throws -> IOResult<(fd: Int32, peer: IPAddress?)> {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept4(listener, $0, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if fd >= 0 { return .done((fd, ipAddress(storage))) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            // The peer gave up before we accepted: nothing to do, try the next one.
            case ECONNABORTED, EPROTO: continue
            default: throw SystemError(call: "accept4", errno: errno)
            }
        }
    }

    /// Reads into `buffer`; `.done(0)` is end of stream.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> IOResult<Int> {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return .done(count) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw SystemError(call: "read", errno: errno)
            }
        }
    }

    /// Writes from `buffer`, returning how much the kernel took. MSG_NOSIGNAL: a reset peer is an error, not
    /// a SIGPIPE.
    public static func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) throws -> IOResult<Int> {
        while true {
            let count = send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            if count >= 0 { return .done(count) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw SystemError(call: "send", errno: errno)
            }
        }
    }

    /// Writes all of `buffer` to a blocking descriptor that may not be a socket (a pipe, a terminal: write(2), not
    /// send(2)), EINTR retried. False when the descriptor fails or would block (the reader is gone or stuck).
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < buffer.count {
            let count = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if count > 0 {
                offset += count
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }

    /// Makes a descriptor that was opened blocking (a pipe, stdin) non-blocking.
    public static func setNonBlocking(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// Closes a descriptor. EINTR is not retried: on Linux the descriptor is already gone
    /// (https://lwn.net/Articles/576478/). `reset` sends RST instead of FIN (SO_LINGER 0), so tearing down
    /// 100,000 client sockets leaves no TIME_WAIT entries holding the source ports of the next run.
    public static func close(_ fd: Int32, reset: Bool = false) {
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        _ = Glibc.close(fd)
    }

    /// Half-closes the sending side, so the peer reads what was sent and then end of stream.
    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SystemError(call: "setsockopt", errno: errno)
        }
    }

    // MARK: - TCP clients

    /// Linux's IP_BIND_ADDRESS_NO_PORT (not exported by Glibc's module): bind() to a source address without
    /// picking a port yet, so connect() can choose one per destination. Without it every bound socket holds a
    /// port of its address for any destination, and bind() slows down as the ports fill.
    private static let ipBindAddressNoPort: Int32 = 24

    /// Starts a non-blocking, close-on-exec connection to `destination`, bound to `source` (port chosen at
    /// connect) when given. Returns the descriptor and whether the handshake is still in flight (EINPROGRESS:
    /// watch for `.write`, then read `pendingError`).
    public static func connect(
        to destination: sockaddr_in, from source: in_addr?, noDelay: Bool = true
    ) throws -> (fd: Int32, pending: Bool) {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw SystemError(call: "socket", errno: errno) }
        if noDelay { try? setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
        if let source {
            try? setOption(fd, Int32(IPPROTO_IP), ipBindAddressNoPort, 1)
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr = source
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else {
                let error = errno
                Glibc.close(fd)
                throw SystemError(call: "bind", errno: error)
            }
        }
        var remote = destination
        let result = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result == 0 { return (fd, false) }
        let error = errno
        if error == EINPROGRESS || error == EINTR { return (fd, true) }
        Glibc.close(fd)
        throw SystemError(call: "connect", errno: error)
    }

    /// The pending error of a socket whose non-blocking connect finished (0: connected).
    public static func pendingError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return errno }
        return error
    }

    /// An IPv4 socket address, or nil when `host` is not a dotted quad.
    public static func ipv4Address(_ host: String, port: Int) -> sockaddr_in? {
        guard let ip = ipv4(host) else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
        address.sin_addr = ip
        return address
    }

    /// An IPv4 address, or nil when `host` is not a dotted quad.
    public static func ipv4(_ host: String) -> in_addr? {
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return nil }
        return address
    }

    private static func withSocketAddress<T>(
        host: String, port: UInt16, ipv6: Bool, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T
    ) throws -> T {
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else {
                throw SystemError(call: "inet_pton \(host)", errno: EINVAL)
            }
            return try withUnsafePointer(to: &address) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw SystemError(call: "inet_pton \(host)", errno: EINVAL)
        }
        return try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

}

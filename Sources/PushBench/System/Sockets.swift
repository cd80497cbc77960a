import Glibc

/// A failure the bench reports and stops on.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Nanoseconds of CLOCK_MONOTONIC: one clock for every process of the machine, so a sender's timestamp and a
/// receiver's clock can be subtracted.
@inline(__always)
func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// The socket calls of the bench, in one place: non-blocking TCP clients only.
enum Sockets {
    /// Linux's IP_BIND_ADDRESS_NO_PORT (not exported by Glibc's module): bind() to a source address without
    /// picking a port yet, so connect() can choose one per destination. Without it every bound socket holds a
    /// port of its address for any destination, and bind() slows down as the ports fill.
    private static let ipBindAddressNoPort: Int32 = 24

    /// The outcome of starting a connection.
    enum Connect {
        /// The socket; `pending` while the handshake is still in flight (EINPROGRESS).
        case started(fd: Int32, pending: Bool)
        /// errno of the call that failed, and its name.
        case failed(errno: Int32, call: String)
    }

    /// Starts a non-blocking connection to `destination`, bound to `source` (port chosen at connect) when given.
    static func connect(to destination: sockaddr_in, from source: in_addr?, noDelay: Bool = true) -> Connect {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { return .failed(errno: errno, call: "socket") }
        if noDelay { setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) }
        if let source {
            setOption(fd, Int32(IPPROTO_IP), ipBindAddressNoPort, 1)
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
                return .failed(errno: error, call: "bind")
            }
        }
        var remote = destination
        let result = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result == 0 { return .started(fd: fd, pending: false) }
        let error = errno
        if error == EINPROGRESS || error == EINTR { return .started(fd: fd, pending: true) }
        Glibc.close(fd)
        return .failed(errno: error, call: "connect")
    }

    /// The pending error of a socket whose non-blocking connect finished (0: connected).
    static func pendingError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return errno }
        return error
    }

    /// The result of a read or write.
    enum IO {
        case bytes(Int)
        case wouldBlock
        case closed
        case failed(Int32)
    }

    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> IO {
        while true {
            let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if count > 0 { return .bytes(count) }
            if count == 0 { return .closed }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .failed(errno)
            }
        }
    }

    /// Sends from `buffer` (MSG_NOSIGNAL: a reset peer is an error, not SIGPIPE).
    static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> IO {
        while true {
            let count = send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))
            if count >= 0 { return .bytes(count) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .failed(errno)
            }
        }
    }

    /// Closes; `reset` sends RST instead of FIN (SO_LINGER 0), so a teardown of 100,000 sockets leaves no
    /// TIME_WAIT entries holding the source ports of the next run.
    static func close(_ fd: Int32, reset: Bool = false) {
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        _ = Glibc.close(fd)
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
        var value = value
        _ = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// An IPv4 socket address, or nil when `host` is not a dotted quad.
    static func address(_ host: String, port: Int) -> sockaddr_in? {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(truncatingIfNeeded: port).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        return address
    }

    /// An IPv4 address, or nil.
    static func ipv4(_ host: String) -> in_addr? {
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return nil }
        return address
    }

    /// Raises the soft limit on open files to the hard one; returns the soft limit afterwards.
    static func raiseFileLimit() -> UInt64 {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return min(UInt64(limit.rlim_cur), 1 << 20)
    }

    /// errno's symbolic name where it matters for connects, else its number.
    static func errnoName(_ code: Int32) -> String {
        switch code {
        case ECONNREFUSED: "ECONNREFUSED"
        case ECONNRESET: "ECONNRESET"
        case ETIMEDOUT: "ETIMEDOUT"
        case EADDRNOTAVAIL: "EADDRNOTAVAIL"
        case EADDRINUSE: "EADDRINUSE"
        case EMFILE: "EMFILE"
        case ENFILE: "ENFILE"
        case ENOBUFS: "ENOBUFS"
        case ENOMEM: "ENOMEM"
        case EPIPE: "EPIPE"
        case EHOSTUNREACH: "EHOSTUNREACH"
        case ENETUNREACH: "ENETUNREACH"
        default: "errno \(code)"
        }
    }
}

import CLibev
import Glibc

/// A failed system call: which call and its errno.
struct SystemError: Error, CustomStringConvertible {
    let call: String
    let errno: Int32

    var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The result of a non-blocking call that may have nothing to do.
enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

/// Every syscall the gateway makes goes through here: EINTR is retried, EAGAIN comes back as `.wouldBlock`,
/// other failures are thrown as `SystemError`.
enum Posix {
    /// Creates a non-blocking, close-on-exec TCP listener on `address` with SO_REUSEADDR and SO_REUSEPORT
    /// (so that several workers can share the port), and returns its descriptor.
    static func listen(host: String, port: UInt16, ipv6: Bool, backlog: Int32 = 4096) throws -> Int32 {
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
    static func checkAddressFree(host: String, port: UInt16, ipv6: Bool) throws {
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
    static func localPort(_ fd: Int32) -> UInt16 {
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
    static func accept(_ listener: Int32) throws -> IOResult<Int32> {
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

    /// Reads into `buffer`; `.done(0)` is end of stream.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> IOResult<Int> {
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
    static func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) throws -> IOResult<Int> {
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

    /// Closes a descriptor. EINTR is not retried: on Linux the descriptor is already gone
    /// (https://lwn.net/Articles/576478/).
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Half-closes the sending side, so the peer reads what was sent and then end of stream.
    static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SystemError(call: "setsockopt", errno: errno)
        }
    }

    /// Raises the soft limit on open files to the hard limit; returns (soft, hard) as they are afterwards.
    static func raiseFileLimit() -> (soft: UInt64, hard: UInt64) {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0 else { return (0, 0) }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Resident set size of this process in bytes, from /proc/self/statm.
    static func residentBytes() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { Glibc.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return 0 }
        let fields = String(decoding: buffer[..<count], as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Starts this executable again (`/proc/self/exe`) with `arguments` (argv, `arguments[0]` the name) and the
    /// current environment; returns the child's pid. A fresh process, never a fork of this Swift runtime.
    /// `control`, when given, becomes the child's descriptor `controlDescriptor` (3); every other descriptor of
    /// this process is close-on-exec.
    static func spawnSelf(_ arguments: [String], control: Int32? = nil) throws -> pid_t {
        var executable = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &executable, executable.count - 1)
        guard length > 0 else { throw SystemError(call: "readlink /proc/self/exe", errno: errno) }
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The child starts with no signal blocked and default dispositions, whatever this process has set.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var moved: Int32 = -1
        defer { if moved >= 0 { Glibc.close(moved) } }
        if var control {
            // dup2 onto itself would keep close-on-exec: move a descriptor that already is 3 out of the way first.
            if control == controlDescriptor {
                moved = fcntl(control, F_DUPFD_CLOEXEC, controlDescriptor + 1)
                guard moved >= 0 else { throw SystemError(call: "fcntl(F_DUPFD_CLOEXEC)", errno: errno) }
                control = moved
            }
            posix_spawn_file_actions_adddup2(&actions, control, controlDescriptor)
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw SystemError(call: "posix_spawn", errno: result) }
        return pid
    }

    /// Unblocks every signal. A process can inherit a mask that blocks SIGTERM (a launcher's thread did), and
    /// libev's signal watchers never unblock: nginx clears the mask at start for the same reason.
    static func unblockAllSignals() {
        var empty = sigset_t()
        sigemptyset(&empty)
        sigprocmask(SIG_SETMASK, &empty, nil)
    }

    /// The process environment as a dictionary.
    static func environment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }

    /// Online CPU cores.
    static func cores() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Asks the kernel to send `signal` to this process when its parent dies, so workers never outlive a
    /// master that was killed.
    static func dieWithParent(_ signal: Int32) {
        _ = clibev_set_parent_death_signal(signal)
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

import Glibc

/// Unix-domain sockets for the admin socket, its client and the master ⇄ worker control pipes.
extension Posix {
    /// The descriptor a worker finds its control pipe on.
    public static let controlDescriptor: Int32 = 3

    /// A connected pair of non-blocking, close-on-exec stream sockets.
    public static func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else { throw SystemError(call: "socketpair", errno: errno) }
        return (fds[0], fds[1])
    }

    /// Listens on a Unix socket at `path`, readable and writable by this user only (mode 0600, set through the
    /// umask at bind so there is no moment with wider rights). Creates missing parent directories (mode 0750).
    /// A socket file nobody listens on (left by a killed gateway) is replaced; one that answers, or a file that
    /// is not a socket, is an error. Returns the non-blocking, close-on-exec descriptor and the file's inode.
    public static func listenUnix(path: String, backlog: Int32 = 16) throws -> (fd: Int32, inode: UInt64) {
        try makeDirectories(parentOf: path)
        var info = stat()
        if Glibc.lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw SystemError(call: "admin socket \(path) exists and is not a socket", errno: EEXIST)
            }
            if let fd = try? connectUnix(path: path, timeout: 1) {
                Glibc.close(fd)
                throw SystemError(call: "admin socket \(path) is in use by another running gateway", errno: EADDRINUSE)
            }
            unlink(path)
        }
        let fd = socket(
            AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(call: "socket(AF_UNIX)", errno: errno) }
        do {
            try withUnixAddress(path) { address, length in
                let previous = umask(0o177)
                defer { umask(previous) }
                guard bind(fd, address, length) == 0 else { throw SystemError(call: "bind \(path)", errno: errno) }
            }
            chmod(path, 0o600)
            guard Glibc.listen(fd, backlog) == 0 else { throw SystemError(call: "listen \(path)", errno: errno) }
            guard Glibc.lstat(path, &info) == 0 else { throw SystemError(call: "lstat \(path)", errno: errno) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return (fd, UInt64(info.st_ino))
    }

    /// Removes the socket file at `path` if it is still the one created with `inode` (not a successor's).
    public static func removeUnixSocket(path: String, inode: UInt64) {
        var info = stat()
        if Glibc.lstat(path, &info) == 0, UInt64(info.st_ino) == inode { unlink(path) }
    }

    /// A blocking connection to the Unix socket at `path`, with `timeout` seconds for each send and receive.
    public static func connectUnix(path: String, timeout: Double) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(call: "socket(AF_UNIX)", errno: errno) }
        var time = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        do {
            try withUnixAddress(path) { address, length in
                guard Glibc.connect(fd, address, length) == 0 else {
                    throw SystemError(call: "connect \(path)", errno: errno)
                }
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Creates the directories above `path` that are missing.
    private static func makeDirectories(parentOf path: String) throws {
        let components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().map(String.init)
        guard !components.isEmpty else { return }
        var current = ""
        for (index, component) in components.enumerated() {
            current += (index == 0 ? "" : "/") + component
            guard !current.isEmpty, component != ".", component != ".." else { continue }
            if mkdir(current, 0o750) != 0 && errno != EEXIST {
                throw SystemError(call: "mkdir \(current)", errno: errno)
            }
        }
    }

    private static func withUnixAddress<T>(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T
    ) throws -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw SystemError(call: "Unix socket path \(path) (at most \(capacity - 1) bytes)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}

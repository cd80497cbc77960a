import Glibc
import PushCore

extension Posix {
    /// The address of the peer of connected socket `fd` (`getpeername`), as bans and `api.allow` compare it: an
    /// IPv4 peer of an IPv6 socket comes back as its IPv4 address. Nil when the socket is not connected any more
    /// (the peer left before it was asked) or is not an IP socket.
    public static func peerAddress(_ fd: Int32) -> IPAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
        }
        return named ? ipAddress(storage) : nil
    }

    /// The IP address in a `sockaddr_storage` (an IPv4-mapped IPv6 one as its IPv4 address); nil for other families.
    static func ipAddress(_ storage: sockaddr_storage) -> IPAddress? {
        var storage = storage
        return withUnsafePointer(to: &storage) { pointer -> IPAddress? in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    IPAddress(v4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr))
                }
            case AF_INET6:
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    var address = $0.pointee.sin6_addr
                    return withUnsafeBytes(of: &address) { IPAddress(bytes: $0) }
                }
            default:
                return nil
            }
        }
    }

    /// Reads into `buffer` without taking the bytes from the socket (`MSG_PEEK`); `.done(0)` is end of stream.
    public static func peek(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> IOResult<Int> {
        while true {
            let count = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_PEEK))
            if count >= 0 { return .done(count) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: throw SystemError(call: "recv(MSG_PEEK)", errno: errno)
            }
        }
    }
}

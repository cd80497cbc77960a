import Glibc
import PushCore

extension Posix {
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

    /// The address of the peer of connected socket `fd` (IPv4 or IPv6), nil for another family or a socket that is
    /// no longer connected.
    public static func peerAddress(_ fd: Int32) -> IPAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    IPAddress(v4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr))
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    var address = $0.pointee.sin6_addr
                    return withUnsafeBytes(of: &address) { IPAddress(bytes: $0) }
                }
            }
        default:
            return nil
        }
    }
}

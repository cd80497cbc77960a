import Glibc
import PushPosix

/// A failure the bench reports and stops on.
struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension EventLoop {
    /// A bench process's loop: the file limit raised to the hard one (at most 2^20 descriptors in the table), and
    /// 256 KiB of read buffer, so one read takes a whole burst of fan-out frames.
    static func bench() throws -> EventLoop {
        let soft = Posix.raiseFileLimit().soft
        return try EventLoop(capacity: Int(min(soft == 0 ? 1024 : soft, 1 << 20)), scratchBytes: 256 * 1024)
    }
}

/// How the bench names socket failures in its reports.
enum Sockets {
    /// "call: ERRNO" for a `SystemError`, for the failure tables.
    static func describe(_ error: Error) -> String {
        guard let error = error as? SystemError else { return "\(error)" }
        return "\(error.call): \(errnoName(error.errno))"
    }

    /// The symbolic errno name of a `SystemError`.
    static func errnoName(_ error: Error) -> String {
        (error as? SystemError).map { errnoName($0.errno) } ?? "\(error)"
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

import Glibc
import PushPosix

/// Figures about other processes (the gateway, redis-server, our children) read from /proc.
enum ProcessTree {
    /// `pid` and all its descendants.
    static func members(_ pid: pid_t) -> [pid_t] {
        var result: [pid_t] = []
        var queue = [pid]
        while let next = queue.popLast() {
            result.append(next)
            guard let tasks = Posix.listDirectory("/proc/\(next)/task") else { continue }
            for task in tasks {
                let text = readText("/proc/\(next)/task/\(task)/children") ?? ""
                queue += text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(" \n")) }
            }
        }
        return result
    }

    /// User + system CPU seconds of `pid` (and of its living descendants when asked).
    static func cpuSeconds(of pid: pid_t, descendants: Bool = true) -> Double {
        let ticks = Double(Posix.clockTicksPerSecond())
        return (descendants ? members(pid) : [pid]).reduce(0.0) { total, member in
            // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
            guard let text = readText("/proc/\(member)/stat"), let close = text.lastIndex(of: ")") else { return total }
            let fields = text[text.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else {
                return total
            }
            return total + (user + system) / ticks
        }
    }

    /// Resident memory in kB of `pid` and all its descendants.
    static func residentKB(of pid: pid_t) -> Int {
        members(pid).reduce(0) { total, member in
            total + (statusField(member, "VmRSS:") ?? 0)
        }
    }

    /// A "Name:   123 kB" field of /proc/<pid>/status.
    static func statusField(_ pid: pid_t, _ name: String) -> Int? {
        guard let text = readText("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap {
                Int($0)
            }
        }
        return nil
    }

    /// Kernel memory that grows with sockets, in kB: slab caches (socket, inode and TCP structures) plus TCP buffer
    /// pages (/proc/net/sockstat `mem`). Machine-wide: other work on the machine moves it too.
    static func kernelSocketKB() -> Int {
        var slab = 0
        for line in (readText("/proc/meminfo") ?? "").split(separator: "\n") where line.hasPrefix("Slab:") {
            slab = line.dropFirst(5).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) } ?? 0
        }
        var pages = 0
        for line in (readText("/proc/net/sockstat") ?? "").split(separator: "\n") where line.hasPrefix("TCP:") {
            let fields = line.split(separator: " ")
            if let index = fields.firstIndex(of: "mem"), index + 1 < fields.count {
                pages = Int(fields[index + 1]) ?? 0
            }
        }
        return slab + pages * Posix.pageSize() / 1024
    }

    /// The machine's 1-minute load average: other work on the machine competes for the same cores.
    static func loadAverage() -> Double {
        readText("/proc/loadavg")?.split(separator: " ").first.flatMap { Double($0) } ?? 0
    }

    /// Whether a process with this pid exists.
    static func exists(_ pid: pid_t) -> Bool { Posix.processExists(pid) }

    static func readText(_ path: String) -> String? {
        guard let fd = Posix.openForReading(path) else { return nil }
        defer { Posix.close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while case .done(let count)? = try? buffer.withUnsafeMutableBytes({ try Posix.read(fd, into: $0) }), count > 0 {
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Substring {
    func trimmingCharacters(_ set: String) -> Substring {
        var text = self
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return text
    }
}

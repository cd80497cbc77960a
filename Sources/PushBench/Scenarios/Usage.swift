import Glibc
import PushCore
import PushPosix

/// CPU used by the gateway, redis-server and the bench's own processes over a stretch of wall time: on a
/// 2-core machine the three compete, and the figures say who had the cores.
struct Usage {
    var wall: UInt64
    var gateway: Double
    var redis: Double
    var bench: Double

    static func sample(_ report: ReportOptions, _ group: ChildGroup) -> Usage {
        Usage(
            wall: Posix.monotonicNanos(),
            gateway: report.gatewayPid.map { ProcessTree.cpuSeconds(of: $0) } ?? 0,
            redis: report.redisPid.reduce(0) { $0 + ProcessTree.cpuSeconds(of: $1) },
            bench: group.cpuSeconds() + ProcessTree.cpuSeconds(of: Posix.pid(), descendants: false))
    }

    /// Cores used between `self` and `later`.
    func cores(until later: Usage) -> (gateway: Double, redis: Double, bench: Double) {
        let seconds = max(1e-9, Double(later.wall &- wall) / 1e9)
        // A process of a tree that exits between samples takes its CPU time with it: never below zero.
        return (
            max(0, later.gateway - gateway) / seconds, max(0, later.redis - redis) / seconds,
            max(0, later.bench - bench) / seconds
        )
    }

    /// "gateway 1.41 · redis 0.22 · bench 0.35 cores".
    static func line(_ from: Usage, _ to: Usage, _ report: ReportOptions) -> String {
        let cores = from.cores(until: to)
        var parts: [String] = []
        if report.gatewayPid != nil { parts.append("gateway \(Format.fixed(cores.gateway, 2))") }
        if !report.redisPid.isEmpty { parts.append("redis \(Format.fixed(cores.redis, 2))") }
        parts.append("bench \(Format.fixed(cores.bench, 2))")
        return parts.joined(separator: " · ") + " cores"
    }

    static func write(_ from: Usage, _ to: Usage, into writer: inout JSONWriter) {
        let cores = from.cores(until: to)
        writer.object {
            $0.key("gateway_cores")
            $0.value((cores.gateway * 100).rounded() / 100)
            $0.key("redis_cores")
            $0.value((cores.redis * 100).rounded() / 100)
            $0.key("bench_cores")
            $0.value((cores.bench * 100).rounded() / 100)
        }
    }
}

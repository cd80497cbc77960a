import CSystem
import Glibc

/// The clock, processes and signals.
extension Posix {
    // MARK: - Clock

    /// Nanoseconds of CLOCK_MONOTONIC: the one clock of pushgw and the bench, for timeouts, round trips and
    /// latencies. It never jumps with the wall clock, and it is the same for every process of the machine, so a
    /// sender's timestamp and a receiver's clock can be subtracted.
    @inline(__always)
    public static func monotonicNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// `monotonicNanos()` in seconds.
    @inline(__always)
    public static func monotonicSeconds() -> Double {
        Double(monotonicNanos()) / 1e9
    }

    /// Milliseconds since the Unix epoch (CLOCK_REALTIME), for times other processes read: a push's time, a log
    /// line's. It jumps with the wall clock: never for durations, which take `monotonicNanos`.
    @inline(__always)
    public static func wallMillis() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) &* 1000 &+ UInt64(now.tv_nsec) / 1_000_000
    }

    /// Seconds since the Unix epoch with their fraction (CLOCK_REALTIME), for uptimes other processes compare.
    public static func wallSecondsPrecise() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Whether `fd` is an open descriptor of this process.
    public static func isOpenDescriptor(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) >= 0 }

    /// Whole seconds since the Unix epoch, as time(2) gives them: TTLs and expiries kept in Redis.
    @inline(__always)
    public static func wallSeconds() -> UInt64 {
        UInt64(Glibc.time(nil))
    }

    /// The wall-clock time now, broken down in the local time zone or in UTC, for timestamps people read.
    public static func calendarTime(utc: Bool = false) -> tm {
        var now = Glibc.time(nil)
        var parts = tm()
        if utc { gmtime_r(&now, &parts) } else { localtime_r(&now, &parts) }
        return parts
    }

    /// Sleeps `seconds` (none when ≤ 0), for polling loops outside an event loop (the bench's coordinator).
    public static func sleep(seconds: Double) {
        usleep(UInt32(max(0, seconds) * 1e6))
    }

    /// Waits up to `seconds` for one of `fds` to be ready (poll(2)); returns how many are, 0 on timeout or error.
    @discardableResult
    public static func poll(_ fds: inout [pollfd], seconds: Double) -> Int {
        max(0, Int(Glibc.poll(&fds, nfds_t(fds.count), Int32(max(0, seconds) * 1000))))
    }

    // MARK: - Resources

    /// Raises the soft limit on open files to the hard limit; returns (soft, hard) as they are afterwards.
    public static func raiseFileLimit() -> (soft: UInt64, hard: UInt64) {
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
    public static func residentBytes() -> Int {
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

    /// Online CPU cores.
    public static func cores() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Bytes in a memory page.
    public static func pageSize() -> Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// Clock ticks per second: the unit of the CPU times in /proc/<pid>/stat.
    public static func clockTicksPerSecond() -> Int { Int(sysconf(Int32(_SC_CLK_TCK))) }

    /// The process environment as a dictionary.
    public static func environment() -> [String: String] {
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

    // MARK: - Processes

    /// This process's pid.
    public static func pid() -> pid_t { getpid() }

    /// The machine's host name ("" if it cannot be read).
    public static func hostName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The working directory, or nil if it cannot be read (removed, too long).
    public static func currentDirectory() -> String? {
        guard let cwd = getcwd(nil, 0) else { return nil }
        defer { free(cwd) }
        return String(cString: cwd)
    }

    /// Whether this process may read the file at `path`.
    public static func isReadable(_ path: String) -> Bool { access(path, R_OK) == 0 }

    /// Whether `fd` is a terminal.
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// A pipe whose two ends (read, write) are close-on-exec.
    public static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe2(&fds, O_CLOEXEC) == 0 else { throw SystemError(call: "pipe2", errno: errno) }
        return (fds[0], fds[1])
    }

    /// Starts this executable again (`/proc/self/exe`) with `arguments` (argv, `arguments[0]` the name) and the
    /// current environment; returns the child's pid. A fresh process, never a fork of this Swift runtime. The
    /// child starts with no signal blocked and default dispositions. `descriptors` maps a descriptor number of
    /// the child to one of this process that it becomes; every other descriptor of this process is close-on-exec.
    public static func spawnSelf(_ arguments: [String], descriptors: [Int32: Int32]) throws -> pid_t {
        var executable = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &executable, executable.count - 1)
        guard length > 0 else { throw SystemError(call: "readlink /proc/self/exe", errno: errno) }
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
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
        var moved: [Int32] = []
        defer { moved.forEach { Glibc.close($0) } }
        let targets = Set(descriptors.keys)
        let above = (targets.max() ?? 2) + 1
        for (target, var source) in descriptors.sorted(by: { $0.key < $1.key }) {
            // dup2 onto itself would keep close-on-exec, and a source that is another target's number would be
            // overwritten before it is copied: move such a descriptor above every target first.
            if targets.contains(source) {
                source = fcntl(source, F_DUPFD_CLOEXEC, above)
                guard source >= 0 else { throw SystemError(call: "fcntl(F_DUPFD_CLOEXEC)", errno: errno) }
                moved.append(source)
            }
            posix_spawn_file_actions_adddup2(&actions, source, target)
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw SystemError(call: "posix_spawn", errno: result) }
        return pid
    }

    /// `spawnSelf` for a worker: `control`, when given, becomes its `controlDescriptor` (3).
    public static func spawnSelf(_ arguments: [String], control: Int32? = nil) throws -> pid_t {
        try spawnSelf(arguments, descriptors: control.map { [controlDescriptor: $0] } ?? [:])
    }

    /// Sends `signal` to `pid`; false when there is no such process (or no right to signal it).
    @discardableResult
    public static func kill(_ pid: pid_t, _ signal: Int32) -> Bool {
        Glibc.kill(pid, signal) == 0
    }

    /// Whether a process with this pid exists (signal 0 probes without sending anything).
    public static func processExists(_ pid: pid_t) -> Bool {
        Glibc.kill(pid, 0) == 0 || errno == EPERM
    }

    /// A child that ended: its pid, its wait status, and the CPU seconds it used (user + system).
    public struct ExitedChild {
        public let pid: pid_t
        public let status: Int32
        public let cpuSeconds: Double
    }

    /// Reaps `pid` (-1: any child) if it ended, or waits for it when `block`; nil when none ended.
    public static func reap(_ pid: pid_t = -1, block: Bool = false) -> ExitedChild? {
        var status: Int32 = 0
        var usage = rusage()
        while true {
            let result = wait4(pid, &status, block ? 0 : WNOHANG, &usage)
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { return nil }
            let cpu =
                Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
            return ExitedChild(pid: result, status: status, cpuSeconds: cpu)
        }
    }

    // MARK: - Signals

    /// Unblocks every signal. A process can inherit a mask that blocks SIGTERM (a launcher's thread did), and
    /// libev's signal watchers never unblock: nginx clears the mask at start for the same reason.
    public static func unblockAllSignals() {
        var empty = sigset_t()
        sigemptyset(&empty)
        sigprocmask(SIG_SETMASK, &empty, nil)
    }

    /// Ignores `signal` in this process (SIGPIPE: a closed pipe is an error return, not death).
    public static func ignore(_ signal: Int32) {
        _ = Glibc.signal(signal, SIG_IGN)
    }

    /// Asks the kernel to send `signal` to this process when its parent dies, so workers and bench children never
    /// outlive a parent that was killed.
    public static func dieWithParent(_ signal: Int32) {
        _ = csystem_set_parent_death_signal(signal)
    }
}

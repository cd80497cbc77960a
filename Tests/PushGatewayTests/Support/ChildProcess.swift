// Child processes of the tests: spawned in their own process group, reaped, killed when the runner exits.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
enum ExitState: Equatable, CustomStringConvertible {
    case running
    case exited(Int32)
    case signaled(Int32)

    var description: String {
        switch self {
        case .running: "running"
        case .exited(let code): "exit status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// Process groups of the children still running, killed when the test runner exits normally (a test that
/// throws past its `defer` still stops them, this is the last resort).
final class ChildRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var pids: Set<pid_t> = []
    private var registeredExitHook = false

    func add(_ pid: pid_t) {
        lock.withLock {
            pids.insert(pid)
            if !registeredExitHook {
                registeredExitHook = true
                atexit { liveChildren.killAll() }
            }
        }
    }

    func remove(_ pid: pid_t) { _ = lock.withLock { pids.remove(pid) } }

    func killAll() {
        for pid in lock.withLock({ pids }) {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
    }
}

let liveChildren = ChildRegistry()

/// A child spawned with posix_spawn and reaped with waitpid. It leads its own process group, starts with default
/// signal dispositions and a mask blocking only `blocked` — not the spawning thread's mask: Swift-concurrency and
/// Dispatch threads block SIGTERM, SIGINT, SIGHUP and more, and a child would inherit that (this is also why
/// Foundation's Process is not used: the gateway it started never saw the SIGTERM).
final class ChildProcess: @unchecked Sendable {
    let pid: pid_t
    private let lock = NSLock()
    private var state = ExitState.running

    init(argv: [String], environment: [String], stdoutPath: String, stderrPath: String, blocked: [Int32] = []) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in blocked { sigaddset(&mask, signal) }
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer {
            cArgv.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArgv, cEnv)
        guard rc == 0 else { throw TestError("posix_spawn \(argv): \(errnoText(rc))") }
        self.pid = pid
        liveChildren.add(pid)
    }

    /// Reaps the child if it has exited (never blocks).
    var exitState: ExitState {
        lock.withLock {
            if state == .running {
                var status: Int32 = 0
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid {
                    state = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
                } else if r < 0 && errno == ECHILD {
                    state = .exited(-1)
                }
            }
            return state
        }
    }

    var isRunning: Bool { exitState == .running }

    func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits (blocking, polling) up to `timeout` seconds for the exit; returns whether it exited.
    func waitForExit(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline { usleep(2_000) }
        return !isRunning
    }

    /// SIGKILL to the child and anything left in its process group, then reap it.
    func killGroup() {
        if isRunning { kill(pid, SIGKILL) }
        kill(-pid, SIGKILL)
        _ = waitForExit(timeout: 5)
        liveChildren.remove(pid)
    }
}

/// Searches PATH for an executable.
func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

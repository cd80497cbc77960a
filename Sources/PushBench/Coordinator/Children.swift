import Glibc
import PushCore
import PushPosix

/// One child process of the coordinator: a fresh execution of this binary (`/proc/self/exe`, never a fork of a
/// running Swift runtime) whose stdin carries commands and whose stdout carries JSON lines back.
final class ChildProcess {
    let name: String
    let pid: pid_t
    /// Our end of the child's stdin.
    private(set) var commands: Int32
    /// Our end of the child's stdout.
    let reports: Int32
    private var lines = LineBuffer()
    /// Reports not consumed yet, oldest first.
    var inbox: [JSONValue] = []
    private(set) var ended = false
    private(set) var exitStatus: Int32?
    /// CPU seconds the child used, known once it was reaped.
    private(set) var cpuSeconds: Double?

    init(name: String, arguments: [String]) throws {
        self.name = name
        let toChild = try Posix.pipe()
        let fromChild: (read: Int32, write: Int32)
        do {
            fromChild = try Posix.pipe()
        } catch {
            Posix.close(toChild.read)
            Posix.close(toChild.write)
            throw error
        }
        defer {
            Posix.close(toChild.read)
            Posix.close(fromChild.write)
        }
        do {
            pid = try Posix.spawnSelf(
                ["pushgw-bench"] + arguments, descriptors: [0: toChild.read, 1: fromChild.write])
        } catch {
            Posix.close(toChild.write)
            Posix.close(fromChild.read)
            throw error
        }
        commands = toChild.write
        reports = fromChild.read
        Posix.setNonBlocking(reports)
    }

    /// Sends one command line; a child that is gone is ignored (SIGPIPE is ignored by the coordinator).
    func send(_ line: String) {
        guard commands >= 0 else { return }
        var text = line + "\n"
        _ = text.withUTF8 { Posix.writeAll(commands, UnsafeRawBufferPointer($0)) }
    }

    /// Closes the child's stdin: it quits.
    func closeCommands() {
        guard commands >= 0 else { return }
        Posix.close(commands)
        commands = -1
    }

    /// Reads what is available; returns false at end of stream.
    func readAvailable() {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while !ended {
            let result: IOResult<Int>
            do {
                result = try buffer.withUnsafeMutableBytes { try Posix.read(reports, into: $0) }
            } catch {
                ended = true
                Posix.close(reports)
                return
            }
            guard case .done(let count) = result else { return }
            if count > 0 {
                for line in buffer.withUnsafeBytes({ lines.append(UnsafeRawBufferPointer(rebasing: $0[..<count])) }) {
                    if let value = try? JSONParser.parse(line), value["type"] != nil {
                        inbox.append(value)
                    } else if !line.isEmpty {
                        note("\(name): \(line)")
                    }
                }
            } else {
                ended = true
                Posix.close(reports)
            }
        }
    }

    /// Removes and returns the first report of `type`, if one came.
    func take(_ type: String) -> JSONValue? {
        guard let index = inbox.firstIndex(where: { $0["type"]?.stringValue == type }) else { return nil }
        return inbox.remove(at: index)
    }

    /// Removes every report of `type` and returns the newest.
    func takeLatest(_ type: String) -> JSONValue? {
        var latest: JSONValue?
        while let value = take(type) { latest = value }
        return latest
    }

    /// Reaps the child if it exited; returns whether it is gone.
    @discardableResult
    func reap(block: Bool = false) -> Bool {
        guard exitStatus == nil else { return true }
        guard let exited = Posix.reap(pid, block: block) else { return false }
        exitStatus = exited.status
        cpuSeconds = exited.cpuSeconds
        if !ended { Posix.close(reports) }
        ended = true
        closeCommands()
        return true
    }
}

/// The coordinator's children, and waiting on their reports with deadlines.
final class ChildGroup {
    private(set) var children: [ChildProcess] = []

    init() {
        Posix.ignore(SIGPIPE)
    }

    func spawn(_ name: String, _ arguments: [String]) throws -> ChildProcess {
        let child = try ChildProcess(name: name, arguments: arguments)
        children.append(child)
        return child
    }

    /// Waits up to `seconds` for reports from any child, then reads them all.
    func poll(_ seconds: Double) {
        var fds = children.filter { !$0.ended }.map { pollfd(fd: $0.reports, events: Int16(POLLIN), revents: 0) }
        if fds.isEmpty {
            Posix.sleep(seconds: seconds)
            return
        }
        Posix.poll(&fds, seconds: seconds)
        for child in children where !child.ended { child.readAvailable() }
    }

    /// Lets `seconds` pass while reading reports (children block when their pipe fills).
    func idle(_ seconds: Double) {
        let deadline = Posix.monotonicNanos() &+ UInt64(max(0, seconds) * 1e9)
        while true {
            let now = Posix.monotonicNanos()
            guard now < deadline else { return }
            poll(min(0.2, Double(deadline - now) / 1e9))
        }
    }

    /// Waits until each of `children` sent a report of `type` and returns them in order. Throws when `seconds`
    /// pass first or a child ends without it. `progress` runs about once a second while waiting.
    func await(
        _ type: String, from children: [ChildProcess], seconds: Double, progress: (() -> Void)? = nil
    ) throws -> [JSONValue] {
        let deadline = Posix.monotonicNanos() &+ UInt64(seconds * 1e9)
        var results = [JSONValue?](repeating: nil, count: children.count)
        var lastProgress = Posix.monotonicNanos()
        while true {
            for (index, child) in children.enumerated() where results[index] == nil {
                results[index] = child.take(type)
                if results[index] == nil && child.ended {
                    throw BenchError("\(child.name) (pid \(child.pid)) exited before it reported \(type)")
                }
            }
            if results.allSatisfy({ $0 != nil }) { return results.map { $0! } }
            let now = Posix.monotonicNanos()
            guard now < deadline else {
                let missing = zip(children, results).filter { $1 == nil }.map(\.0.name)
                throw BenchError("no \(type) from \(missing.joined(separator: ", ")) within \(Int(seconds)) s")
            }
            if let progress, now &- lastProgress > 1_000_000_000 {
                lastProgress = now
                progress()
            }
            poll(min(0.2, Double(deadline - now) / 1e9))
        }
    }

    /// Asks every child to quit (closing its stdin), waits up to `seconds` for all of them, then kills the rest.
    func stopAll(seconds: Double = 30) { stop(children, seconds: seconds) }

    /// Asks `children` to quit, waits up to `seconds` for them, then kills the rest.
    func stop(_ children: [ChildProcess], seconds: Double = 10) {
        for child in children {
            child.send("quit")
            child.closeCommands()
        }
        let deadline = Posix.monotonicNanos() &+ UInt64(seconds * 1e9)
        while Posix.monotonicNanos() < deadline {
            for child in children where !child.ended { child.readAvailable() }
            if children.allSatisfy({ $0.reap() }) { return }
            Posix.sleep(seconds: 0.02)
        }
        for child in children where !child.reap() {
            note("\(child.name) (pid \(child.pid)) did not quit: killing it")
            Posix.kill(child.pid, SIGKILL)
            child.reap(block: true)
        }
    }

    /// CPU seconds used so far by the children still running plus those reaped.
    func cpuSeconds() -> Double {
        children.reduce(0) { total, child in
            total + (child.cpuSeconds ?? ProcessTree.cpuSeconds(of: child.pid, descendants: false))
        }
    }
}

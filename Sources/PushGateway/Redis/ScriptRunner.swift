import Logging
import PushCore
import PushPosix

/// Why storage gave no result.
enum StoreFailure: Error, CustomStringConvertible {
    /// Redis could not be asked (down, overloaded, timed out): nothing can be said about the command.
    case unavailable(RedisError)
    /// Redis answered with an error, or with a reply the script decoder does not understand.
    case script(ScriptError)
    /// The master ran the script, but fewer replicas than `redis.wait_replicas` acknowledged it within
    /// `redis.wait_timeout_ms` (`WAIT`): a failover now could lose it, so it is not acknowledged (SPEC §9).
    case notReplicated(wanted: Int, acknowledged: Int)

    /// Whether the command may have run in Redis all the same (sent, and no reply came). An error reply means
    /// the script stopped before writing (its checks come first); a command never sent did not run.
    var mayHaveRun: Bool {
        switch self {
        case .unavailable(let error): error.mayHaveRun
        case .script: false
        case .notReplicated: true
        }
    }

    var description: String {
        switch self {
        case .unavailable(let error): "\(error)"
        case .script(let error): "\(error)"
        case .notReplicated(let wanted, let acknowledged):
            "stored on the master, but \(acknowledged) of the \(wanted) replicas asked for acknowledged it in time"
        }
    }
}

/// The command connection to Redis (SPEC §5): runs the Lua scripts with EVALSHA over one pipelined connection (on
/// a Redis Cluster, one per master, each call sent to the master of its keys' slot, SPEC §9), loading them at every
/// connect and falling back to EVAL on NOSCRIPT, bounds the session scripts in flight, and sends the few plain
/// commands (PUBLISH, the registry's hashes).
final class ScriptRunner {
    let redis: RedisCommands
    private let logger: Logger
    private var readyHandlers: [() -> Void] = []
    /// `redis.wait_replicas` and `redis.wait_timeout_ms`: a batch of stores is acknowledged once that many replicas
    /// have it (0: once the master has it).
    private let waitReplicas: Int
    private let waitTimeoutMillis: Int

    /// Stored messages of this loop iteration: sent as few `store.lua` calls before the loop sleeps.
    /// Grouped by slot on a cluster, as every batch here.
    private let stores: ScriptBatcher<StoreBatchCall>
    /// ACKs of this loop iteration, one per device cursor (the highest seq): as few `ack.lua` calls.
    private let acks: ScriptBatcher<AckBatchCall>
    /// AUTHs' session scripts started in this loop iteration (``runSessionScript(_:_:)-SessionCall``).
    private let sessions: ScriptBatcher<SessionBatchCall>
    /// The index in `acks` of each device cursor's pending ACK.
    private var pendingAcks: [DeviceCursor: Int] = [:]

    private struct DeviceCursor: Hashable {
        var uid: String
        var device: String
    }

    init(loop: EventLoop, config: GatewayConfiguration.Redis, logger: Logger) {
        self.logger = logger
        waitReplicas = config.waitReplicas
        waitTimeoutMillis = config.waitTimeoutMillis
        let bySlot = !config.cluster.isEmpty
        stores = ScriptBatcher(maxItems: 128, maxWeight: 256 * 1024, bySlot: bySlot)
        acks = ScriptBatcher(maxItems: 256, bySlot: bySlot)
        sessions = ScriptBatcher(maxItems: 64, bySlot: bySlot)
        if config.cluster.isEmpty {
            let client = RedisClient(loop: loop, url: config.url, name: "store", logger: logger)
            redis = .server(client)
            client.onReady = { [unowned self, unowned client] in
                self.loadScripts(on: client)
                for handler in self.readyHandlers { handler() }
            }
        } else {
            let cluster = RedisClusterClient(loop: loop, seeds: config.cluster, logger: logger)
            redis = .cluster(cluster)
            // Each master (again, or newly promoted) gets the scripts; once all are ready, the handlers run, as
            // after a reconnect to one server.
            cluster.onMasterReady = { [unowned self, unowned cluster] _, client in
                self.loadScripts(on: client)
                if cluster.isReady { for handler in self.readyHandlers { handler() } }
            }
        }
        // After the client's own hook (registered in its init): a failure found at send is then delivered at the
        // next iteration, as for any command.
        loop.addBeforeSleep { [unowned self] in self.flushBatches() }
    }

    /// Runs `handler` each time the connection is (again) ready, after the scripts were sent to load.
    func whenReady(_ handler: @escaping () -> Void) { readyHandlers.append(handler) }

    func start() { redis.start() }

    func stop() { redis.stop() }

    /// Whether commands can be sent now (on a cluster: its slot map is known).
    var isAvailable: Bool { redis.isAvailable }

    /// Runs one script and decodes its reply.
    func run<Call: ScriptCall>(_ call: Call, _ done: @escaping (Result<Call.Result, StoreFailure>) -> Void) {
        // Every key of a call shares one slot: the first names it.
        let key = call.keys.first ?? []
        redis.send(call.evalsha, key: key) { [weak self] result in
            switch Self.decode(Call.self, result) {
            case .failure(.script(let error)) where error.isNoScript:
                // Redis lost its script cache (restart, SCRIPT FLUSH, a replica promoted since the load): EVAL runs
                // it and caches it again.
                self?.logger.notice("script not cached in Redis, sending it again", metadata: ["script": "\(Call.script.name)"])
                self?.redis.send(call.eval, key: key) { done(Self.decode(Call.self, $0)) }
            case let other:
                done(other)
            }
        }
    }

    /// Runs a batch of stores; with `redis.wait_replicas`, its result is handed on only once `WAIT` says enough
    /// replicas have it. `WAIT` goes after the reply, on the connection that ran the script (its slot's master):
    /// it waits for every write that connection made before it.
    private func runStores(_ call: StoreBatchCall, _ done: @escaping (Result<StoreBatchCall.Result, StoreFailure>) -> Void) {
        guard waitReplicas > 0 else { return run(call, done) }
        let key = call.keys.first ?? []
        run(call) { [weak self] result in
            guard let self, case .success = result else { return done(result) }
            let wait = [Array("WAIT".utf8), Array(String(self.waitReplicas).utf8), Array(String(self.waitTimeoutMillis).utf8)]
            self.redis.send(wait, key: key) { [wanted = self.waitReplicas] reply in
                switch reply {
                case .success(.integer(let acknowledged)) where acknowledged >= wanted:
                    done(result)
                case .success(.integer(let acknowledged)):
                    done(.failure(.notReplicated(wanted: wanted, acknowledged: Int(acknowledged))))
                case .success:
                    done(.failure(.notReplicated(wanted: wanted, acknowledged: 0)))
                case .failure(let error):
                    // The script ran: whatever happened to WAIT, the stores may be there.
                    done(.failure(.unavailable(error.mayHaveRun ? error : .disconnected)))
                }
            }
        }
    }

    /// Stores one message (``StoreCall``) with the others of this loop iteration: `store.lua` runs for as many
    /// messages per call as ``ScriptBatcher`` allows, and `done` gets this message's result. Messages of one user
    /// are stored in the order of these calls.
    ///
    /// Every ``storesSentEarly`` messages go to Redis at once, not when the loop sleeps: an iteration that reads
    /// 128 pipelined pushes would otherwise hand Redis one call only after parsing all of them, and get their
    /// answers back all at once, so that the gateway, Redis and the backend worked in turns instead of together
    /// (BENCHMARKS.md, "Stores sent while the loop still reads").
    func store(_ call: StoreCall, _ done: @escaping (Result<StoreResult, StoreFailure>) -> Void) {
        stores.add(call, done)
        if stores.count >= Self.storesSentEarly { sendStoresNow() }
    }

    /// Stores collected in an iteration that are sent at once, as one call, without waiting for the loop to sleep.
    static let storesSentEarly = 16

    private func sendStoresNow() {
        // AUTHs of this iteration go first, as at the end of the iteration (`flushBatches`).
        flushSessions()
        // Redis down: they fail in `flushBatches` before the loop sleeps, with the rest of the iteration's.
        guard redis.isAvailable else { return }
        stores.flush { call, done in runStores(call, done) }
        redis.writeNow()
    }

    /// Moves a device's ACK cursor forward, with the other ACKs of this loop iteration (one `ack.lua` call for
    /// all). Several ACKs of one device in an iteration write its cursor once, to the highest seq. A failure is
    /// only logged: the device ACKs again with its next message, and a cursor behind only replays a message.
    func ack(_ call: AckCall) {
        let cursor = DeviceCursor(uid: call.uid, device: call.device)
        if let index = pendingAcks[cursor] {
            acks.update(at: index) { $0.seq = max($0.seq, call.seq) }
            return
        }
        pendingAcks[cursor] = acks.add(call) { [logger] result in
            guard case .failure(let error) = result else { return }
            logger.debug("ACK not stored", metadata: ["uid": "\(call.uid)", "error": "\(error)"])
        }
    }

    private func flushBatches() {
        // Sessions first: an AUTH asked for in this iteration was sent at once before batching, ahead of the stores.
        flushSessions()
        if !pendingAcks.isEmpty { pendingAcks.removeAll(keepingCapacity: true) }
        guard !stores.isEmpty || !acks.isEmpty else { return }
        // Not sent when the connection is down: fail now rather than at the next iteration (a 503 at once).
        guard redis.isAvailable else {
            stores.fail(.unavailable(.notConnected))
            acks.fail(.unavailable(.notConnected))
            return
        }
        stores.flush { call, done in runStores(call, done) }
        acks.flush { call, done in run(call, done) }
    }

    /// Session scripts (AUTH's `session.lua`, a close's `leave.lua`) in flight at most; more wait here, in order.
    /// A reconnect storm or a mass close would otherwise put tens of thousands of scripts in Redis's queue at
    /// once, and those at the back would pass the command timeout, which drops the connection and fails every
    /// command in flight. Waiting here costs a device some milliseconds; failing costs it a reconnect.
    static let maxSessionScriptsInFlight = 128
    private var sessionScriptsInFlight = 0
    /// A FIFO: `nextWaiting` is the head; a started entry is set to nil at once, so what it captured (the
    /// connection, the request) is released then and not at the next compaction.
    private var waitingSessionScripts: [(() -> Void)?] = []
    private var nextWaiting = 0

    /// Runs a session script through the bounded queue above; otherwise the same as `run`. One queue for both
    /// kinds keeps a device's leave after its session, as they were asked for.
    func runSessionScript<Call: ScriptCall>(_ call: Call, _ done: @escaping (Result<Call.Result, StoreFailure>) -> Void) {
        enqueueSessionScript { [unowned self] in
            // AUTHs started in this iteration are sent before the loop sleeps: send them now, so that this script
            // (a leave of the same device, say) does not overtake them.
            self.flushSessions()
            self.run(call) { result in self.sessionScriptFinished { done(result) } }
        }
    }

    /// An AUTH's `session.lua` through the same queue, sent with the other AUTHs that start in this loop iteration,
    /// as few calls as ``ScriptBatcher`` allows, before the loop sleeps (a reconnect storm's AUTHs 64 per call).
    func runSessionScript(_ call: SessionCall, _ done: @escaping (Result<SessionResult, StoreFailure>) -> Void) {
        enqueueSessionScript { [unowned self] in
            self.sessions.add(call) { result in self.sessionScriptFinished { done(result) } }
        }
    }

    /// Starts `start` now when fewer than the most session scripts are in flight and none wait, else queues it.
    private func enqueueSessionScript(_ start: @escaping () -> Void) {
        let begin = { [unowned self] in
            self.sessionScriptsInFlight += 1
            start()
        }
        if sessionScriptsInFlight < Self.maxSessionScriptsInFlight && nextWaiting == waitingSessionScripts.count {
            begin()
        } else {
            waitingSessionScripts.append(begin)
        }
    }

    /// A session script's reply came: `report` hands it on, then waiting scripts may start.
    private func sessionScriptFinished(_ report: () -> Void) {
        sessionScriptsInFlight -= 1
        report()
        startWaitingSessionScripts()
    }

    /// Sends the AUTHs' session scripts collected since the last time (failing them at once when Redis is down);
    /// a failure may start waiting ones, which are sent (or failed) too.
    private func flushSessions() {
        while !sessions.isEmpty {
            guard redis.isAvailable else {
                sessions.fail(.unavailable(.notConnected))
                continue
            }
            sessions.flush { call, done in run(call, done) }
        }
    }

    private func startWaitingSessionScripts() {
        while sessionScriptsInFlight < Self.maxSessionScriptsInFlight, nextWaiting < waitingSessionScripts.count {
            let start = waitingSessionScripts[nextWaiting]
            waitingSessionScripts[nextWaiting] = nil
            nextWaiting += 1
            start?()
        }
        if nextWaiting == waitingSessionScripts.count {
            waitingSessionScripts.removeAll(keepingCapacity: waitingSessionScripts.count <= 1024)
            nextWaiting = 0
        } else if nextWaiting >= 1024 {
            waitingSessionScripts.removeSubrange(..<nextWaiting)
            nextWaiting = 0
        }
    }

    /// Sends a plain command whose reply only matters as success or failure.
    func command(_ args: [String], _ done: ((Bool) -> Void)? = nil) {
        let args = args.map { Array($0.utf8) }
        redis.send(args, key: args.count > 1 ? args[1] : []) { result in
            guard let done else { return }
            switch result {
            case .success(.error): done(false)
            case .success: done(true)
            case .failure: done(false)
            }
        }
    }

    /// Sends a plain command (its key second, as in `GET key`) and hands over its reply as it came.
    func send(_ command: [[UInt8]], _ done: @escaping (Result<RedisValue, RedisError>) -> Void) {
        redis.send(command, key: command.count > 1 ? command[1] : [], done)
    }

    /// Publishes `message` on `channel`; `done` gets the number of nodes that received it (0 when Redis is down).
    func publish(_ channel: String, _ message: NodeMessage, _ done: ((Int) -> Void)? = nil) {
        let channel = Array(channel.utf8)
        redis.send([Array("PUBLISH".utf8), channel, message.encoded], key: channel) { result in
            if case .success(.integer(let receivers)) = result { done?(Int(receivers)) } else { done?(0) }
        }
    }

    private static func decode<Call: ScriptCall>(
        _ call: Call.Type, _ result: Result<RedisValue, RedisError>
    ) -> Result<Call.Result, StoreFailure> {
        switch result {
        case .failure(let error):
            return .failure(.unavailable(error))
        case .success(let reply):
            do {
                return .success(try Call.decode(reply))
            } catch let error as ScriptError {
                return .failure(.script(error))
            } catch {
                return .failure(.script(.unexpectedReply(script: Call.script.name, "\(error)", reply: reply)))
            }
        }
    }

    private func loadScripts(on client: RedisClient) {
        for script in Scripts.all {
            client.send(script.load) { [logger] result in
                if case .success(let reply) = result, case .string(let sha) = reply,
                    String(decoding: sha, as: UTF8.self) == script.sha1
                {
                    return
                }
                logger.error("SCRIPT LOAD failed", metadata: ["script": "\(script.name)", "reply": "\(result)"])
            }
        }
    }
}

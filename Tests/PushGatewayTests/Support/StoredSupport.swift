// Helpers for the stored-message tests (SPEC §2 ACK/SYNC/READ, §3 user endpoints): stored pushes, SYNC paging,
// READ, frame collection and the user endpoint.
import Foundation
import Testing

/// The body of a stored push (`store` left out: stored is the default) to `users`.
func storedPushBody(
    users: [String], op: Int = 1000, payload: String? = nil, payloadB64: String? = nil, id: String? = nil
) -> String {
    pushBody(users: users, op: op, payload: payload ?? "{}", payloadB64: payloadB64, store: nil, id: id)
}

extension HTTPResponse {
    /// `seqs[user]` of a push reply.
    func seq(_ user: String) -> Int? {
        number((json?["seqs"] as? [String: Any])?[user]).map { Int($0) }
    }

    /// `online[user]` of a push reply (0 when the user is not listed).
    func online(_ user: String) -> Int? {
        guard let online = json?["online"] as? [String: Any] else { return nil }
        return number(online[user]).map { Int($0) } ?? 0
    }
}

extension GatewayProcess {
    /// GET /v1/users/{uid}; throws unless it answers 200 with a JSON object.
    func userInfo(_ uid: String) async throws -> [String: Any] {
        let response = try await http(HTTP.request("GET", "/v1/users/\(uid)"))
        guard response.status == 200, let json = response.json else {
            throw TestError("GET /v1/users/\(uid): \(response)")
        }
        return json
    }

    /// The device keys GET /v1/users/{uid} lists.
    func deviceKeys(_ uid: String) async throws -> [String] {
        let info = try await userInfo(uid)
        return ((info["devices"] as? [[String: Any]]) ?? []).compactMap { $0["key"] as? String }.sorted()
    }
}

extension WireClient {
    /// Reads exactly `count` frames; throws if the connection closes or a frame is late.
    func readFrames(_ count: Int, timeout: Double = WireClient.defaultTimeout) async throws -> [Frame] {
        var frames: [Frame] = []
        while frames.count < count {
            guard let frame = try await readFrame(timeout: timeout) else {
                throw TestError("closed after \(frames.count) of \(count) frames: \(frames)")
            }
            frames.append(frame)
        }
        return frames
    }

    /// Sends HEARTBEAT `seq` and returns every frame that came before its HEARTBEAT_REPLY (which proves the
    /// connection is up and answered). Throws if the connection closes first.
    func framesBeforeHeartbeat(seq: UInt32, timeout: Double = WireClient.defaultTimeout) async throws -> [Frame] {
        try send(op: Op.heartbeat, seq: seq)
        var frames: [Frame] = []
        while true {
            guard let frame = try await readFrame(timeout: timeout) else {
                throw TestError("closed before HEARTBEAT_REPLY \(seq); frames meanwhile: \(frames)")
            }
            if frame.op == Op.heartbeatReply && frame.seq == seq { return frames }
            frames.append(frame)
        }
    }

    /// Sends SYNC with `body` and returns the reply frame and the frames of its batch body; throws unless the
    /// reply is op 21 echoing `seq` with a body of whole frames.
    func sync(_ body: String, seq: UInt32) async throws -> (reply: Frame, frames: [Frame]) {
        try send(op: Op.sync, seq: seq, text: body)
        guard let reply = try await readFrame() else { throw TestError("closed after SYNC \(body)") }
        guard reply.op == Op.syncReply, reply.seq == seq else {
            throw TestError("SYNC \(body) seq \(seq): expected op 21 seq \(seq), got \(reply)")
        }
        guard let frames = splitBatch(reply.body) else {
            throw TestError("SYNC \(body): the reply body is not whole frames: \(reply)")
        }
        return (reply, frames)
    }

    /// Pages through SYNC from `after` with `limit`, again while a page is full (SPEC §2), at most `maxPages`.
    func syncAll(after: Int = 0, limit: Int = 100, maxPages: Int = 50) async throws -> [Frame] {
        var all: [Frame] = []
        var cursor = after
        for page in 0..<maxPages {
            let (_, frames) = try await sync("{\"after\":\(cursor),\"limit\":\(limit)}", seq: UInt32(9000 + page))
            all += frames
            guard frames.count == limit, let last = frames.last else { return all }
            cursor = Int(last.seq)
        }
        throw TestError("SYNC still returning full pages after \(maxPages) pages")
    }

    /// Sends READ {"seq":N} and returns the reply's `unread`; throws unless the reply is op 23 echoing `seq`.
    func readUpTo(_ n: Int, seq: UInt32) async throws -> Int? {
        try send(op: Op.read, seq: seq, text: "{\"seq\":\(n)}")
        guard let reply = try await readFrame() else { throw TestError("closed after READ \(n)") }
        guard reply.op == Op.readReply, reply.seq == seq else {
            throw TestError("READ \(n) seq \(seq): expected op 23 seq \(seq), got \(reply)")
        }
        return number(reply.json?["unread"]).map { Int($0) }
    }
}

/// Seconds since 1970, now.
func unixNow() -> Double { Date().timeIntervalSince1970 }

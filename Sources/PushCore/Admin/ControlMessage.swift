/// What the master and a worker say to each other on the worker's control pipe: one JSON object a line, `"t"`
/// naming the kind. Workers send a snapshot every second and the replies to commands; the master sends the
/// gateway-wide `/metrics` text every second and the operators' commands.
public enum ControlMessage: Equatable, Sendable {
    /// Worker → master: its figures now.
    case snapshot(WorkerSnapshot)
    /// Worker → master: the answer to command `id`, as lines (the first one starting with `ERR ` on failure).
    case reply(id: Int, lines: [String])
    /// Master → worker: the Prometheus text of the whole gateway, served as `GET /metrics`.
    case metrics([UInt8])
    /// Master → worker: run `name` (`conns`, `kick`, `nodes`, `drain`, `log-level`) and reply with the same `id`.
    case command(id: Int, name: String, arguments: [String])

    /// The message as one JSON line, newline included.
    public var line: [UInt8] {
        var writer = JSONWriter()
        writer.object { o in
            switch self {
            case .snapshot(let snapshot):
                o.field("t", "snapshot")
                o.key("s")
                snapshot.write(to: &o)
            case .reply(let id, let lines):
                o.field("t", "reply")
                o.field("id", id)
                o.key("lines")
                o.array { array in lines.forEach { array.value($0) } }
            case .metrics(let text):
                o.field("t", "metrics")
                o.field("text", String(decoding: text, as: UTF8.self))
            case .command(let id, let name, let arguments):
                o.field("t", "command")
                o.field("id", id)
                o.field("name", name)
                o.key("args")
                o.array { array in arguments.forEach { array.value($0) } }
            }
        }
        var bytes = writer.bytes
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Reads one line (without its newline); nil when it is not a message this build knows.
    public init?<Bytes: Collection<UInt8>>(line: Bytes) {
        guard let json = try? JSONParser.parse(Array(line)), let kind = json["t"]?.stringValue else { return nil }
        switch kind {
        case "snapshot":
            guard let body = json["s"], let snapshot = WorkerSnapshot(json: body) else { return nil }
            self = .snapshot(snapshot)
        case "reply":
            guard let id = json["id"]?.int64Value, let lines = json["lines"]?.arrayValue else { return nil }
            self = .reply(id: Int(id), lines: lines.compactMap(\.stringValue))
        case "metrics":
            guard let text = json["text"]?.stringValue else { return nil }
            self = .metrics(Array(text.utf8))
        case "command":
            guard let id = json["id"]?.int64Value, let name = json["name"]?.stringValue else { return nil }
            self = .command(
                id: Int(id), name: name, arguments: json["args"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        default:
            return nil
        }
    }
}

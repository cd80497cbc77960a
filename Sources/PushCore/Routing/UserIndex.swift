/// The local user → connections index of one worker. Most users have one device here, so a single
/// connection is stored inline and an array is allocated only from the second one on.
public struct UserIndex<Connection: AnyObject> {
    private enum Entry {
        case one(Connection)
        case many([Connection])
    }

    private var entries: [String: Entry] = [:]
    /// Connections in the index.
    public private(set) var connectionCount = 0

    public init() {}

    /// Users with at least one connection.
    public var userCount: Int { entries.count }

    public mutating func add(_ connection: Connection, user: String) {
        connectionCount += 1
        switch entries[user] {
        case nil: entries[user] = .one(connection)
        case .one(let first): entries[user] = .many([first, connection])
        case .many(var list):
            entries[user] = nil  // keep `list` uniquely referenced while it grows
            list.append(connection)
            entries[user] = .many(list)
        }
    }

    /// Removes `connection` (by identity); a connection that is not there is ignored.
    public mutating func remove(_ connection: Connection, user: String) {
        switch entries[user] {
        case nil: return
        case .one(let only):
            guard only === connection else { return }
            entries[user] = nil
        case .many(var list):
            guard let index = list.firstIndex(where: { $0 === connection }) else { return }
            entries[user] = nil
            list.remove(at: index)
            entries[user] = list.count == 1 ? .one(list[0]) : .many(list)
        }
        connectionCount -= 1
    }

    /// The connections of `user`, oldest first.
    public func connections(of user: String) -> [Connection] {
        switch entries[user] {
        case nil: []
        case .one(let only): [only]
        case .many(let list): list
        }
    }

    /// Calls `body` for each connection of `user` without building an array.
    public func forEach(of user: String, _ body: (Connection) -> Void) {
        switch entries[user] {
        case nil: return
        case .one(let only): body(only)
        case .many(let list): list.forEach(body)
        }
    }

    public func count(of user: String) -> Int {
        switch entries[user] {
        case nil: 0
        case .one: 1
        case .many(let list): list.count
        }
    }

    /// Every user with a connection in the index.
    public var users: [String] { Array(entries.keys) }

    /// Calls `body` for every connection in the index.
    public func forEachConnection(_ body: (Connection) -> Void) {
        for entry in entries.values {
            switch entry {
            case .one(let only): body(only)
            case .many(let list): list.forEach(body)
            }
        }
    }
}

/// `bans.lua`: adds a ban or lifts one, bumping `pg:{bans}:v` so that every node reloads the list. Decodes to the
/// new version, or 0 when a ban to lift was not there.
public struct BanCall: ScriptCall {
    public static var script: Script { Scripts.bans }

    /// What the call does.
    public enum Change: Equatable, Sendable {
        /// Adds (or replaces) this ban.
        case add(Ban)
        /// Lifts the ban with this id.
        case remove(id: String)
    }

    public var change: Change

    public init(_ change: Change) {
        self.change = change
    }

    public var keys: [[UInt8]] { [Array(RedisKeys.bans.utf8), Array(RedisKeys.bansVersion.utf8)] }

    public var args: [[UInt8]] {
        switch change {
        case .add(let ban): [Array("set".utf8), Array(ban.id.utf8), ban.json]
        case .remove(let id): [Array("del".utf8), Array(id.utf8)]
        }
    }

    /// The new version (at least 1), or 0: no such ban to lift.
    public static func decode(_ reply: RedisValue) throws -> UInt64 {
        try ReplyReader.scalar(script.name, reply, "version")
    }
}

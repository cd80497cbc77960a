/// A Lua script as Redis knows it: its source and the SHA-1 that EVALSHA names it by.
public struct Script: Sendable, Equatable {
    /// The file name without `.lua`, for logs and errors.
    public let name: String
    /// The Lua source as Redis runs it: for a script of `Storage/Scripts/`, `prelude.lua` and then the file, byte
    /// for byte as in the repository.
    public let source: [UInt8]
    /// Lowercase hex SHA-1 of `source`: what SCRIPT LOAD returns and EVALSHA takes.
    public let sha1: String

    /// A script of exactly `source` (no prelude).
    public init(name: String, source: [UInt8]) {
        self.name = name
        self.source = source
        self.sha1 = SHA1.hex(source)
    }

    /// A script of `Storage/Scripts/`: ``Scripts/prelude`` followed by the file's text `file`.
    init(name: String, file: [UInt8]) {
        self.init(name: name, source: Scripts.prelude + file)
    }

    /// `EVALSHA <sha1> <numkeys> <keys…> <args…>`: the usual way to run it.
    public func evalsha(keys: [[UInt8]], args: [[UInt8]]) -> [[UInt8]] {
        [Array("EVALSHA".utf8), Array(sha1.utf8), Array(String(keys.count).utf8)] + keys + args
    }

    /// `EVAL <source> <numkeys> <keys…> <args…>`: after a NOSCRIPT reply (Redis restarted, or SCRIPT FLUSH), which
    /// also caches the script again.
    public func eval(keys: [[UInt8]], args: [[UInt8]]) -> [[UInt8]] {
        [Array("EVAL".utf8), source, Array(String(keys.count).utf8)] + keys + args
    }

    /// `SCRIPT LOAD <source>`: loads it at connect, so EVALSHA finds it.
    public var load: [[UInt8]] {
        [Array("SCRIPT".utf8), Array("LOAD".utf8), source]
    }
}

/// Every script of `Storage/Scripts/`, compiled into the binary (Package.swift `.embedInCode`), each preceded by
/// `prelude.lua`. Each file's header comment gives its KEYS, ARGV and reply; ``ScriptCall`` types build the first
/// two and decode the third.
public enum Scripts {
    /// `prelude.lua`: the Lua helpers the scripts share (argument checks, inbox ranges, publishing to other nodes).
    /// Not a script: it is the start of every script's ``Script/source``.
    public static let prelude: [UInt8] = PackageResources.prelude_lua

    /// Stores a message: assign seq, append, trim, count unread, expire, idempotency, publish to other nodes.
    public static let store = Script(name: "store", file: PackageResources.store_lua)
    /// Registers a device's session at AUTH and returns the messages it missed.
    public static let session = Script(name: "session", file: PackageResources.session_lua)
    /// The stored messages after a seq.
    public static let sync = Script(name: "sync", file: PackageResources.sync_lua)
    /// Moves a device's ACK cursor forward.
    public static let ack = Script(name: "ack", file: PackageResources.ack_lua)
    /// Moves the user's read cursor forward and recounts unread.
    public static let read = Script(name: "read", file: PackageResources.read_lua)
    /// Removes a device's session if this node still holds it.
    public static let leave = Script(name: "leave", file: PackageResources.leave_lua)
    /// A user's counters and sessions.
    public static let user = Script(name: "user", file: PackageResources.user_lua)
    /// Publishes a transient push or kick to the other nodes holding a user's sessions.
    public static let route = Script(name: "route", file: PackageResources.route_lua)
    /// Adds or lifts a ban and bumps the bans' version.
    public static let bans = Script(name: "bans", file: PackageResources.bans_lua)

    /// All of them, to SCRIPT LOAD on every (re)connect.
    public static let all: [Script] = [store, session, sync, ack, read, leave, user, route, bans]
}

/// One run of one script: its KEYS and ARGV, built from typed values, and the decoder of its reply.
///
/// The Redis client sends ``evalsha`` (after SCRIPT LOAD of ``Scripts/all`` at connect), falls back to ``eval`` on
/// a NOSCRIPT error (``ScriptError/isNoScript``), and hands the reply to ``decode(_:)``.
public protocol ScriptCall: Sendable {
    /// What ``decode(_:)`` makes of the reply.
    associatedtype Result: Sendable
    /// The script this call runs.
    static var script: Script { get }
    /// `KEYS`, in the order the script's header comment gives.
    var keys: [[UInt8]] { get }
    /// `ARGV`, integers as decimal strings.
    var args: [[UInt8]] { get }
    /// The EVALSHA and EVAL commands: requirements so that a call whose KEYS and ARGV come from one pass over its
    /// items builds them once.
    var evalsha: [[UInt8]] { get }
    var eval: [[UInt8]] { get }
    /// Decodes the reply; throws ``ScriptError`` for an error reply or a reply of the wrong shape (never traps).
    static func decode(_ reply: RedisValue) throws -> Result
}

extension ScriptCall {
    /// The EVALSHA command for this call.
    public var evalsha: [[UInt8]] { Self.script.evalsha(keys: keys, args: args) }
    /// The EVAL command for this call (sends the whole source: after NOSCRIPT only).
    public var eval: [[UInt8]] { Self.script.eval(keys: keys, args: args) }
}

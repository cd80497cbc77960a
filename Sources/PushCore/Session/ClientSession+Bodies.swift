/// The bodies of the client operations that carry JSON (SPEC §2): parsed here, so the connection server gets
/// typed actions and never sees a body.
extension ClientSession {
    /// Messages a SYNC without `limit` asks for.
    public static let defaultSyncLimit = 100

    /// A non-negative integer member of a JSON object body (`{"seq":N}`, `{"after":N}`); nil when it is missing,
    /// negative, not an integer, or the body is not a JSON object.
    static func seqField(_ body: [UInt8], _ name: String) -> UInt64? {
        guard let json = try? JSONParser.parse(body), let value = json[name]?.int64Value, value >= 0 else { return nil }
        return UInt64(value)
    }

    /// The topic names of a SUB or UNSUB body, `{"topics":["name",…]}`; nil unless every element is a string that
    /// is a valid identifier (non-empty, at most 256 bytes, no control characters).
    static func topicList(_ body: [UInt8]) -> [String]? {
        guard let json = try? JSONParser.parse(body), let list = json["topics"]?.arrayValue else { return nil }
        let names = list.compactMap(\.stringValue)
        guard names.count == list.count, names.allSatisfy(AuthRequest.isValidIdentifier) else { return nil }
        return names
    }
}

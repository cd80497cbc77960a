/// Local members of named groups (goim rooms, topics): join and leave in O(1), a group's members for a fan-out,
/// and a signal when a group gains its first member or loses its last (a node subscribes to a topic's channel
/// only while it has a member).
public struct GroupIndex<Member: AnyObject> {
    private var groups: [String: [ObjectIdentifier: Member]] = [:]

    public init() {}

    /// Adds `member`; returns true when the group had no member before.
    @discardableResult
    public mutating func join(_ member: Member, _ group: String) -> Bool {
        let first = groups[group] == nil
        groups[group, default: [:]][ObjectIdentifier(member)] = member
        return first
    }

    /// Removes `member`; returns true when the group is now empty (and forgotten).
    @discardableResult
    public mutating func leave(_ member: Member, _ group: String) -> Bool {
        guard var members = groups.removeValue(forKey: group) else { return false }
        members[ObjectIdentifier(member)] = nil
        if members.isEmpty { return true }
        groups[group] = members
        return false
    }

    public func count(_ group: String) -> Int { groups[group]?.count ?? 0 }

    /// The members of `group`, in no particular order.
    public func members(_ group: String) -> [Member] { groups[group].map { Array($0.values) } ?? [] }

    /// Every group with its member count.
    public var counts: [(String, Int)] { groups.map { ($0.key, $0.value.count) } }
}

/// A script call that carries several independent items (messages, ACKs) and answers one entry per item, in
/// order. The gateway collects the items of one loop iteration and sends as few calls as Redis Cluster's slots
/// allow: items are grouped by ``slot(of:)`` (every key of one item is in one slot), kept in order within a group.
public protocol BatchScriptCall: ScriptCall where Result == [Swift.Result<Entry, ScriptError>] {
    /// One item of the call.
    associatedtype Item: Sendable
    /// What the script did with one item.
    associatedtype Entry: Sendable

    /// A call of these items, in order (at least one).
    init(_ items: [Item])

    /// The Redis Cluster slot of the item's keys.
    static func slot(of item: Item) -> UInt16

    /// Whether `item` can go in the call that starts with `first` (a header common to the call), true by default.
    static func canShare(_ item: Item, with first: Item) -> Bool

    /// The item's share of a call's size (bytes, roughly); 1 by default. A batch is closed at a total weight.
    static func weight(of item: Item) -> Int
}

/// A batch call whose KEYS and ARGV come from one pass over its items (``encoded``): the EVALSHA command is built
/// from that one pass, not from one for the keys and another for the arguments.
public protocol EncodedBatchCall: BatchScriptCall {
    /// KEYS and ARGV, in the order the script's header comment gives.
    var encoded: (keys: [[UInt8]], args: [[UInt8]]) { get }
}

extension EncodedBatchCall {
    public var keys: [[UInt8]] { encoded.keys }
    public var args: [[UInt8]] { encoded.args }

    public var evalsha: [[UInt8]] {
        let (keys, args) = encoded
        return Self.script.evalsha(keys: keys, args: args)
    }

    public var eval: [[UInt8]] {
        let (keys, args) = encoded
        return Self.script.eval(keys: keys, args: args)
    }
}

extension BatchScriptCall {
    public static func canShare(_ item: Item, with first: Item) -> Bool { true }

    public static func weight(of item: Item) -> Int { 1 }

    /// Decodes an array reply of one entry per item: an error element is that item's failure, anything else goes
    /// through `entry`. An error reply as a whole (a bad argument, NOSCRIPT) throws: it is every item's failure.
    static func decodeEntries(
        _ reply: RedisValue, _ entry: (RedisValue) throws -> Entry
    ) throws -> [Swift.Result<Entry, ScriptError>] {
        let reader = try ReplyReader(script.name, reply)
        return reader.elements.map { element in
            if case .error(let message) = element { return .failure(.server(script: script.name, message: message)) }
            do {
                return .success(try entry(element))
            } catch let error as ScriptError {
                return .failure(error)
            } catch {
                return .failure(.unexpectedReply(script: script.name, "\(error)", reply: element))
            }
        }
    }

    /// The items split into calls: grouped by slot when `bySlot` (Redis Cluster; standalone Redis takes any keys in
    /// one call), in order within a group, each call at most `maxItems` items and about `maxWeight` weight (an item
    /// heavier than that goes alone). Returns the indexes of `items` in each call.
    public static func batches(of items: [Item], bySlot: Bool, maxItems: Int, maxWeight: Int) -> [[Int]] {
        var groups: [[Int]] = []
        if bySlot {
            var groupOfSlot: [UInt16: Int] = [:]
            for index in items.indices {
                let slot = slot(of: items[index])
                if let group = groupOfSlot[slot] {
                    groups[group].append(index)
                } else {
                    groupOfSlot[slot] = groups.count
                    groups.append([index])
                }
            }
        } else {
            groups = [Array(items.indices)]
        }
        var batches: [[Int]] = []
        for group in groups {
            var current: [Int] = []
            var weight = 0
            for index in group {
                let itemWeight = Self.weight(of: items[index])
                if let first = current.first,
                    current.count >= maxItems || weight + itemWeight > maxWeight || !canShare(items[index], with: items[first])
                {
                    batches.append(current)
                    current = []
                    weight = 0
                }
                current.append(index)
                weight += itemWeight
            }
            if !current.isEmpty { batches.append(current) }
        }
        return batches
    }
}

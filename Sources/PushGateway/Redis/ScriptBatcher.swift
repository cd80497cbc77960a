import PushCore

/// The items of one batch script (``BatchScriptCall``: stores, ACKs) collected during a loop iteration and sent
/// before the loop sleeps, in as few script calls as the limits and Redis Cluster's slots allow (redis's own
/// "write in batches before sleeping", applied to Redis commands). Each item's `done` gets its own entry of the
/// reply; a call that gets no reply, or an error reply as a whole, fails exactly the items in it.
///
/// Order: calls are sent in the order of their first item, and items keep their order within a call, so two
/// items of one user (always one slot) run in the order they were added.
final class ScriptBatcher<Call: BatchScriptCall> {
    typealias Done = (Result<Call.Entry, StoreFailure>) -> Void

    /// Items per call at most: one script runs alone in Redis, so a call must stay short.
    let maxItems: Int
    /// ``BatchScriptCall/weight(of:)`` per call at most (an item heavier than that goes alone).
    let maxWeight: Int
    /// Group by slot: only Redis Cluster needs it; standalone Redis takes any keys in one call.
    let bySlot: Bool

    private var items: [Call.Item] = []
    private var completions: [Done] = []

    init(maxItems: Int, maxWeight: Int = .max, bySlot: Bool = false) {
        self.maxItems = maxItems
        self.maxWeight = maxWeight
        self.bySlot = bySlot
    }

    var isEmpty: Bool { items.isEmpty }

    /// Items added since the last flush.
    var count: Int { items.count }

    /// Adds an item for the next flush; returns its index until then (for ``update(at:_:)``).
    @discardableResult
    func add(_ item: Call.Item, _ done: @escaping Done) -> Int {
        items.append(item)
        completions.append(done)
        return items.count - 1
    }

    /// Changes an item added since the last flush (an ACK's seq raised by a later ACK of the same device).
    func update(at index: Int, _ change: (inout Call.Item) -> Void) { change(&items[index]) }

    /// Sends what was added: `run` sends one call and reports its reply (or why there is none).
    func flush(_ run: (Call, @escaping (Result<Call.Result, StoreFailure>) -> Void) -> Void) {
        guard !items.isEmpty else { return }
        let items = self.items
        let completions = self.completions
        self.items.removeAll(keepingCapacity: true)
        self.completions.removeAll(keepingCapacity: true)
        let batches = Call.batches(of: items, bySlot: bySlot, maxItems: maxItems, maxWeight: maxWeight)
        for batch in batches {
            let dones = batch.map { completions[$0] }
            run(Call(batch.map { items[$0] })) { result in
                switch result {
                case .failure(let failure):
                    for done in dones { done(.failure(failure)) }
                case .success(let entries) where entries.count != dones.count:
                    let error = ScriptError.unexpectedReply(
                        script: Call.script.name, "\(entries.count) entries for \(dones.count) items", reply: .null)
                    for done in dones { done(.failure(.script(error))) }
                case .success(let entries):
                    for (done, entry) in zip(dones, entries) { done(entry.mapError { .script($0) }) }
                }
            }
        }
    }

    /// Fails every item added since the last flush, without sending (the connection is down).
    func fail(_ failure: StoreFailure) {
        let completions = self.completions
        items.removeAll(keepingCapacity: true)
        self.completions.removeAll(keepingCapacity: true)
        for done in completions { done(.failure(failure)) }
    }
}

/// The notifier processes (`pushgw notify`, SPEC §10) among the master's children.
extension Master {
    /// Children from this index on are notifiers, restarted like workers; they have no control pipe (they serve no
    /// clients, snapshots or admin commands), and `stats`, `conns` and drains leave them out.
    static let firstNotifier = 10_000

    /// `notify.workers` notifiers.
    func spawnNotifiers() {
        for index in 0..<config.notify.workers { spawn(index: Self.firstNotifier + index) }
    }
}

/// A list of `RouteMatch` indexed for `register`: sets for exact values, a short list of version prefixes.
struct RouteMatchSet: Equatable, Sendable {
    private var users: Set<String> = []
    private var devices: Set<String> = []
    private var versions: Set<String> = []
    private var versionPrefixes: [Substring] = []

    init(_ matches: [RouteMatch]) {
        for match in matches {
            switch match {
            case .user(let user): users.insert(user)
            case .device(let device): devices.insert(device)
            case .version(let version) where version.hasSuffix("*"): versionPrefixes.append(version.dropLast())
            case .version(let version): versions.insert(version)
            }
        }
    }

    /// Whether any entry matches the user, the device or the version.
    func matches(uid: String, device: String?, version: String?) -> Bool {
        if users.contains(uid) { return true }
        if let device, devices.contains(device) { return true }
        guard let version else { return false }
        return versions.contains(version) || versionPrefixes.contains { version.hasPrefix($0) }
    }
}

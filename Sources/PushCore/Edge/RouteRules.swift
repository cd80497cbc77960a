/// The register server's route rules (SPEC §8), read by every node: whether a user gets a long connection or
/// long-polls, and whether it goes to the gray group's gateways.
///
/// `decide` applies them in this order: a `deny` match is a long-poll; an `allow` match a long connection;
/// otherwise, with `long_connection` false everyone long-polls; a user whose bucket is not under `percent`
/// long-polls; the others get a long connection. A user with a long connection whose gray bucket is under
/// `gray.percent` goes to `gray.group`.
///
/// Buckets are `CRC32` of the uid's UTF-8, mod 100, so they are the same on every node and for any backend that
/// computes them: raising `percent` only adds users. The gray bucket is `CRC32("gray:" + uid) mod 100`, another
/// draw, so the gray cohort is not the same users as the first of the rollout: `gray.percent` is a share of the
/// users who get a long connection (all users when `percent` is 100, the usual case).
public struct RouteRules: Equatable, Sendable {
    /// A share of users sent to another group's gateways.
    public struct Gray: Equatable, Sendable {
        /// The group whose gateways gray users get.
        public var group: String
        /// The share of users with a long connection, 0 to 100.
        public var percent: Int

        public init(group: String, percent: Int) {
            self.group = group
            self.percent = percent
        }
    }

    /// The group of the users outside the gray release, and of a node whose `server.group` is not set.
    public static let defaultGroup = "default"

    /// `long_connection`: false sends every user not in `allow` to long polling. Default true.
    public var longConnection = true
    /// `percent`: the share of users, 0 to 100, who get a long connection. Default 100.
    public var percent = 100
    /// `gray`: default none.
    public var gray: Gray? = nil
    /// `allow`: users, devices or versions that always get a long connection (unless denied). Default empty.
    public var allow: [RouteMatch] = [] { didSet { allowed = RouteMatchSet(allow) } }
    /// `deny`: users, devices or versions that never get one. Default empty.
    public var deny: [RouteMatch] = [] { didSet { denied = RouteMatchSet(deny) } }

    private var allowed = RouteMatchSet([])
    private var denied = RouteMatchSet([])

    /// Rules from their parts; `RouteRules()` is the defaults: everyone gets a long connection, no gray group.
    public init(
        longConnection: Bool = true, percent: Int = 100, gray: Gray? = nil, allow: [RouteMatch] = [],
        deny: [RouteMatch] = []
    ) {
        self.longConnection = longConnection
        self.percent = percent
        self.gray = gray
        self.allow = allow
        self.deny = deny
        // `didSet` does not run in an initializer.
        allowed = RouteMatchSet(allow)
        denied = RouteMatchSet(deny)
    }

    /// What `POST /v1/register` answers for user `uid` on `device` running app `version`: whether to hold a long
    /// connection (else long-poll), and the gray group when the user is in it (nil: the usual gateways).
    public func decide(uid: String, device: String?, version: String?) -> (longConnection: Bool, group: String?) {
        if denied.matches(uid: uid, device: device, version: version) { return (false, nil) }
        if !allowed.matches(uid: uid, device: device, version: version) {
            guard longConnection, Self.bucket(uid) < percent else { return (false, nil) }
        }
        if let gray, Self.grayBucket(uid) < gray.percent { return (true, gray.group) }
        return (true, nil)
    }

    /// The user's rollout bucket, 0 to 99: CRC32 of the uid mod 100.
    public static func bucket(_ uid: String) -> Int { Int(CRC32.checksum(uid.utf8) % 100) }

    /// The user's gray bucket, 0 to 99: CRC32 of `gray:<uid>` mod 100.
    public static func grayBucket(_ uid: String) -> Int { Int(CRC32.checksum(("gray:" + uid).utf8) % 100) }
}

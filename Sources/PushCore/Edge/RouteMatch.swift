/// One entry of the route rules' `allow` or `deny` list: `{"user":…}`, `{"device":…}` or `{"version":…}`.
///
/// A version ending in `*` matches every version that starts with what comes before it: `"1.2.*"` matches
/// `1.2.0` and `1.2.10`, `"*"` any version given. Anything else matches exactly.
public enum RouteMatch: Hashable, Sendable {
    /// A user id.
    case user(String)
    /// A device key.
    case device(String)
    /// An app version, or a prefix of versions ending in `*`.
    case version(String)
}

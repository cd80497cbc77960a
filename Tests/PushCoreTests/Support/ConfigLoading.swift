@testable import PushCore

// Loading a configuration in the config tests (ConfigTests, TLSConfigTests, NotifyConfigTests).

/// Loads with no file unless `toml` is given, on a 4-core machine.
func load(_ toml: String? = nil, _ environment: [String: String] = [:]) throws -> GatewayConfiguration {
    try GatewayConfiguration.load(toml: toml, environment: environment, cores: 4).0
}

/// The `ConfigError` that loading throws, or nil.
func loadError(_ toml: String? = nil, _ environment: [String: String] = [:]) -> ConfigError? {
    do {
        _ = try load(toml, environment)
        return nil
    } catch {
        return error as? ConfigError
    }
}

import Testing

@testable import PushCore

/// The TLS keys of SPEC §8: three listeners, the certificate files, the protocol floor.
@Suite("Configuration: TLS")
struct TLSConfigTests {
    private let files = ["PUSHGW_TLS_CERT": "/etc/pushgw/chain.pem", "PUSHGW_TLS_KEY": "/etc/pushgw/key.pem"]

    /// Off by default: no TLS listener, no certificate, TLS 1.2 as the floor.
    @Test func defaults() throws {
        let configuration = try load()
        #expect(configuration.server.tls == nil && configuration.server.wss == nil && configuration.server.https == nil)
        #expect(configuration.tls.cert == nil && configuration.tls.key == nil && configuration.tls.minVersion == .v1_2)
        #expect(configuration.tlsListeners.isEmpty)
    }

    /// Each key from the environment, as SPEC §8 names the variables.
    @Test func fromEnvironment() throws {
        var environment = files
        environment["PUSHGW_SERVER_TLS"] = "0.0.0.0:3103"
        environment["PUSHGW_SERVER_WSS"] = "[::1]:3104"
        environment["PUSHGW_SERVER_HTTPS"] = "127.0.0.1:3113"
        environment["PUSHGW_TLS_MIN_VERSION"] = "1.3"
        let configuration = try load(nil, environment)
        #expect(configuration.server.tls?.description == "0.0.0.0:3103")
        #expect(configuration.server.wss?.description == "[::1]:3104")
        #expect(configuration.server.https?.description == "127.0.0.1:3113")
        #expect(configuration.tls.cert == "/etc/pushgw/chain.pem" && configuration.tls.key == "/etc/pushgw/key.pem")
        #expect(configuration.tls.minVersion == .v1_3)
        #expect(configuration.tlsListeners.map(\.key) == ["server.tls", "server.wss", "server.https"])
    }

    /// From the file, one listener on.
    @Test func fromFile() throws {
        let toml = "[server]\nwss = \"127.0.0.1:3104\"\n"
            + "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nmin_version = \"1.2\""
        let configuration = try load(toml)
        #expect(configuration.tlsListeners.map(\.key) == ["server.wss"])
        #expect(configuration.tls.cert == "c.pem" && configuration.tls.minVersion == .v1_2)
    }

    /// A TLS listener without its certificate or key stops the start, naming the missing key and the listener.
    @Test(arguments: [
        (["PUSHGW_SERVER_TLS": "127.0.0.1:3103"], "tls.cert"),
        (["PUSHGW_SERVER_WSS": "127.0.0.1:3104", "PUSHGW_TLS_CERT": "c.pem"], "tls.key"),
        (["PUSHGW_SERVER_HTTPS": "127.0.0.1:3113", "PUSHGW_TLS_KEY": "k.pem", "PUSHGW_TLS_CERT": ""], "tls.cert"),
    ])
    func listenerNeedsCertificate(_ environment: [String: String], _ key: String) throws {
        let error = try #require(loadError(nil, environment))
        #expect(error.key == key, "\(error)")
        #expect(error.message.contains("server."), "names the listener: \(error)")
    }

    /// Certificate files alone (no listener) are fine: a listener can be turned on by a variable later.
    @Test func certificateWithoutListener() throws {
        #expect(try load(nil, files).tlsListeners.isEmpty)
    }

    /// Bad values name their key.
    @Test(arguments: [
        ("[tls]\nmin_version = \"1.1\"", "tls.min_version"),
        ("[tls]\nmin_version = 1.3", "tls.min_version"),
        ("[tls]\ncert = 5", "tls.cert"),
        ("[server]\ntls = \"3103\"", "server.tls"),
        ("[server]\nwss = \"localhost\"", "server.wss"),
        ("[server]\nhttps = \"0.0.0.0:3111\"", "server.https"),
    ])
    func badValueNamesKey(_ toml: String, _ key: String) throws {
        let error = try #require(loadError(toml, files))
        #expect(error.key == key, "\(error)")
    }

    /// A TLS listener may not share its address with another listener.
    @Test func overlappingListener() throws {
        var environment = files
        environment["PUSHGW_SERVER_TLS"] = "127.0.0.1:3101"
        let error = try #require(loadError(nil, environment))
        #expect(error.key == "server.tls" && error.message.contains("server.tcp"), "\(error)")
    }
}

import ArgumentParser
import Glibc
import Logging
import PushCore

/// `pushgw`: the push gateway daemon and its tools.
@main
struct PushGW: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pushgw",
        abstract: "A long-connection push gateway: TCP clients, an HTTP push API, Redis-backed inboxes.",
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self
    )
}

/// `pushgw serve [--config F]`: runs the gateway in the foreground, logging to stderr.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway in the foreground.")

    @Option(name: .long, help: "Configuration file (default: Config/pushgw.toml when present, else built-in defaults).")
    var config: String?

    func run() throws {
        let path = config ?? (access("Config/pushgw.toml", R_OK) == 0 ? "Config/pushgw.toml" : nil)
        let settings: GatewayConfiguration
        let warnings: [String]
        do {
            (settings, warnings) = try GatewayConfiguration.load(
                path: path, environment: Self.environment(), cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        } catch {
            let message = "pushgw: configuration error: \(error)\n"
            _ = message.withCString { Glibc.write(2, $0, strlen($0)) }
            throw ExitCode(2)
        }
        LogSetup.bootstrap(settings.log)
        let logger = Logger(label: "pushgw")
        logger.info("configuration", metadata: ["file": "\(path ?? "(defaults)")"])
        for warning in warnings { logger.warning("\(warning)") }

        signal(SIGPIPE, SIG_IGN)
        do {
            let worker = try Worker(config: settings, logger: logger)
            worker.run()
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    private static func environment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

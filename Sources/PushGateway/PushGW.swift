import ArgumentParser
import Glibc
import Logging
import PushCore
import PushPosix

/// `pushgw`: the push gateway daemon and its tools.
@main
struct PushGW: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pushgw",
        abstract: "A long-connection push gateway: TCP clients, an HTTP push API, Redis-backed inboxes.",
        subcommands: [Serve.self, Ctl.self, WorkerCommand.self, NotifyCommand.self],
        defaultSubcommand: Serve.self
    )
}

/// Loads the configuration the way every subcommand does: `--config F`, else `Config/pushgw.toml` when
/// present, else the defaults; then `PUSHGW_*`. A bad value exits with status 2 naming the key.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: Config/pushgw.toml when present, else built-in defaults).")
    var config: String?

    /// The file that will be read, made absolute so workers find it whatever their directory.
    var resolvedPath: String? {
        guard let path = config ?? (Posix.isReadable("Config/pushgw.toml") ? "Config/pushgw.toml" : nil) else {
            return nil
        }
        guard !path.hasPrefix("/"), let cwd = Posix.currentDirectory() else { return path }
        return cwd + "/" + path
    }

    func load() throws -> (GatewayConfiguration, warnings: [String]) {
        do {
            return try GatewayConfiguration.load(path: resolvedPath, environment: Posix.environment(), cores: Posix.cores())
        } catch {
            let message = "pushgw: configuration error: \(error)\n"
            _ = Array(message.utf8).withUnsafeBytes { Posix.writeAll(2, $0) }
            throw ExitCode(2)
        }
    }
}

/// `pushgw serve [--config F]`: the master process, in the foreground, logging to stderr.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (master and workers) in the foreground.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let (settings, warnings) = try options.load()
        LogSetup.bootstrap(settings.log)
        var logger = Logger(label: "pushgw")
        logger[metadataKey: "proc"] = "master"
        logger.info("configuration", metadata: ["file": "\(options.resolvedPath ?? "(defaults)")"])
        for warning in warnings { logger.warning("\(warning)") }
        Posix.ignore(SIGPIPE)
        Posix.unblockAllSignals()
        do {
            let master = try Master(config: settings, configPath: options.resolvedPath, logger: logger)
            throw ExitCode(master.run())
        } catch let exit as ExitCode {
            throw exit
        } catch let error as StartError {
            let message = "pushgw: \(error)\n"
            _ = Array(message.utf8).withUnsafeBytes { Posix.writeAll(2, $0) }
            throw ExitCode(1)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}

/// `pushgw worker`: one worker process, started by the master.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "One worker process (started by `pushgw serve`).", shouldDisplay: false)

    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "This worker's index, for logs.") var index = 0
    @Option(name: .customLong("control-fd"), help: "The descriptor of the control pipe to the master.")
    var controlFD: Int32?

    func run() throws {
        try runChild(options, proc: "worker-\(index)") { settings, logger in
            try Worker(config: settings, logger: logger, index: index, controlFD: controlFD).run()
        }
    }
}

struct NotifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify", abstract: "One notifier process (started by `pushgw serve`, notify.workers; SPEC §10).",
        shouldDisplay: false)

    @OptionGroup var options: ConfigOption
    @Option(name: .long, help: "This notifier's index, for logs and its consumer name.") var index = 0

    func run() throws {
        try runChild(options, proc: "notify-\(index)") { settings, logger in
            try Notifier(config: settings, index: index, logger: logger).run()
        }
    }
}

/// A process the master started (a worker, a notifier): it dies with the master, reads the configuration, logs as
/// `proc`, ignores SIGPIPE, takes the signals the master blocked, and runs `body`; a failure to start is logged and
/// exits 1.
private func runChild(
    _ options: ConfigOption, proc: String, _ body: (GatewayConfiguration, Logger) throws -> Void
) throws {
    Posix.dieWithParent(SIGTERM)
    let (settings, _) = try options.load()
    LogSetup.bootstrap(settings.log)
    var logger = Logger(label: "pushgw")
    logger[metadataKey: "proc"] = "\(proc)"
    Posix.ignore(SIGPIPE)
    Posix.unblockAllSignals()
    do {
        try body(settings, logger)
    } catch {
        logger.critical("cannot start", metadata: ["error": "\(error)"])
        throw ExitCode(1)
    }
}

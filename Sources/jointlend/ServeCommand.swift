import Foundation
import Gateway

/// `jointlend serve`: runs the gateway until SIGTERM/SIGINT, then shuts down gracefully (exit 0).
enum ServeCommand {
    static let help = """
        USAGE: jointlend serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--test-mode]

        Runs the gateway with Config/gateway.json by default. The SQLite database lives in
        DIR/jointlend.sqlite (DIR defaults to the configuration's dataDir, ./data). Logs are JSON
        lines on stderr; the listening address is printed on stdout. SIGTERM or SIGINT stops
        accepting, lets in-flight requests finish, and exits 0.
          --test-mode   adds test-only routes (contract provider states); never in production
        """

    static func parseListen(_ text: String) throws(UsageError) -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw UsageError("--listen: expected HOST:PORT, e.g. 127.0.0.1:8080")
        }
        let host = String(text[..<colon])
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    static func run(_ args: ArraySlice<String>) -> Int32 {
        if args.contains("--help") { print(help); return 0 }
        var options = GatewayServer.Options()
        do {
            let opts = try Options(args, valued: ["config", "listen", "data-dir"], switches: ["test-mode"])
            options.configPath = opts.value("config") ?? options.configPath
            if let l = opts.value("listen") { (options.listenHost, options.listenPort) = try parseListen(l) }
            options.dataDirectory = opts.value("data-dir")
            options.testMode = opts.flag("test-mode")
        } catch {
            writeStderr("jointlend serve: \(error)")
            return 2
        }
        let chosen = options
        let result = runBlocking { () async -> Result<GatewayServer, any Error> in
            do { return .success(try await GatewayServer(options: chosen)) } catch { return .failure(error) }
        }
        let server: GatewayServer
        switch result {
        case .success(let s): server = s
        case .failure(let e as ConfigError):
            writeStderr("jointlend serve: invalid configuration\n\(e)")
            return 2
        case .failure(let e):
            writeStderr("jointlend serve: cannot start: \(e)")
            return 1
        }
        do { try server.start() } catch {
            writeStderr("jointlend serve: cannot listen: \(error)")
            return 1
        }
        FileHandle.standardOutput.write(Data("jointlend listening on http://\(server.config.runtime.server.host):\(server.port) (database \(server.databasePath))\n".utf8))
        server.http.runUntilTerminated()
        server.stop()
        return 0
    }
}

/// Runs an async function to completion from synchronous code (the CLI's entry points).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let box = ResultBox<T>()
    Task {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

final class ResultBox<T>: @unchecked Sendable {
    // @unchecked: written once by the task before the semaphore is signalled, read after the wait.
    var value: T?
}

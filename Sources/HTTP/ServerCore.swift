import CPosix
import Synchronization

/// What every loop of one server shares: immutable settings plus the connection count.
final class ServerCore: Sendable {
    let configuration: HTTPServer.Configuration
    let responder: RouterResponder
    let logger: Logger
    let transportFactory: any HTTPTransportFactory
    let observer: (@Sendable (RequestMetrics) -> Void)?
    let connectionCount = Atomic<Int>(0)
    /// `configuration.connectionsMax`, lowered if need be so that connections leave
    /// `fileDescriptorsReserved` descriptors free: a process out of descriptors cannot answer
    /// 503, open its database or let the runtime start a thread.
    let connectionsMax: Int
    static let fileDescriptorsReserved = 256
    /// Response bytes all connections hold because their clients are not reading them (what a
    /// write left behind), against `outputBacklogBytesMax`.
    let backloggedBytes = Atomic<Int>(0)

    init(
        configuration: HTTPServer.Configuration, responder: RouterResponder, logger: Logger,
        transportFactory: any HTTPTransportFactory, observer: (@Sendable (RequestMetrics) -> Void)?
    ) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        self.transportFactory = transportFactory
        self.observer = observer
        let openFilesLimit = CPosix_raise_open_files_limit()
        if openFilesLimit > 0, openFilesLimit - Int64(Self.fileDescriptorsReserved) < Int64(configuration.connectionsMax) {
            connectionsMax = max(1, Int(openFilesLimit) - Self.fileDescriptorsReserved)
            logger.warning("connectionsMax lowered to fit the open-files limit",
                           metadata: ["configured": String(configuration.connectionsMax), "limit": String(openFilesLimit), "connectionsMax": String(connectionsMax)])
        } else {
            connectionsMax = configuration.connectionsMax
        }
    }
}

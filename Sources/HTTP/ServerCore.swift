import Synchronization

/// What every loop of one server shares: immutable settings plus the connection count.
final class ServerCore: Sendable {
    let configuration: HTTPServer.Configuration
    let responder: RouterResponder
    let logger: Logger
    let transportFactory: any HTTPTransportFactory
    let observer: (@Sendable (RequestMetrics) -> Void)?
    let connectionCount = Atomic<Int>(0)

    init(
        configuration: HTTPServer.Configuration, responder: RouterResponder, logger: Logger,
        transportFactory: any HTTPTransportFactory, observer: (@Sendable (RequestMetrics) -> Void)?
    ) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        self.transportFactory = transportFactory
        self.observer = observer
    }
}

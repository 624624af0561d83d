import HTTP

/// Routes that exist only in explicit test mode (`serve --test-mode`).
enum TestModeRoutes {
    @Sendable static func register(_ router: inout HTTP.Router) {
        router.onSync(.GET, "/_test/mode") { _, _ in Response.json(#"{"testMode":true}"#) }
    }
}

import Foundation
import Testing
@testable import Gateway

@Suite(.serialized) struct OpenAPITests {
    /// The server's routes and Contracts/openapi.json's operations must be the same set.
    @Test func serverRoutesAndSpecPathsAreTheSame() async throws {
        let h = try await LoopbackGateway()
        defer { h.stop() }
        let served = Set(try h.server.api.makeResponder().routes.map { "\($0.method.rawValue) \($0.pattern)" })
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(LoopbackGateway.repoRoot)/Contracts/openapi.json"))
        guard case .object(let paths)? = try JSONParser.parse(Array(data))["paths"] else { Issue.record("no paths"); return }
        var documented = Set<String>()
        for (path, item) in paths {
            guard case .object(let ops) = item else { continue }
            for (method, _) in ops { documented.insert("\(method.uppercased()) \(path)") }
        }
        #expect(served == documented, "served only: \(served.subtracting(documented).sorted()); documented only: \(documented.subtracting(served).sorted())")
        #expect(Set(GatewayAPI.routeTable.map { "\($0.method) \($0.path)" }) == served)
    }
}

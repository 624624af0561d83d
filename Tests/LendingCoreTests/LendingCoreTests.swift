import Testing
@testable import LendingCore

import Testing
@testable import PartnerSigning

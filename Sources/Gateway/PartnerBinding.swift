import HTTP
import PartnerSigning
import Storage

/// Everything a partner's request needs, found with one lookup of the partner id: the contract,
/// its verifier and signer, and the names and counters its confirmations use, all resolved
/// once at start-up instead of per request.
final class PartnerBinding: Sendable {
    let contract: PartnerContract
    let verifier: PartnerVerifier
    let signer: PartnerSigner
    /// The rate limiter's caller id, `partner:<id>`.
    let rateLimitCallerID: String
    let fieldNames: ConfirmationCodec.FieldNames
    let confirmedFunded: Counter
    let confirmedDeclined: Counter

    init(contract: PartnerContract, replayGuard: NonceReplayGuard, metrics: Metrics) throws(SigningError) {
        self.contract = contract
        verifier = try contract.makeVerifier(replayGuard: replayGuard)
        signer = try contract.makeSigner()
        rateLimitCallerID = "partner:\(contract.partnerId)"
        fieldNames = ConfirmationCodec.FieldNames(contract)
        confirmedFunded = metrics.counter(GatewayAPI.confirmationsMetric, [("partner", contract.partnerId), ("outcome", "funded")])
        confirmedDeclined = metrics.counter(GatewayAPI.confirmationsMetric, [("partner", contract.partnerId), ("outcome", "declined")])
    }

    func confirmations(_ outcome: FundingConfirmation.Outcome) -> Counter {
        outcome == .funded ? confirmedFunded : confirmedDeclined
    }
}

/// An approved loan, as the platform's credit system hands it to the gateway.
/// `borrowerRef` is an opaque token, never a name or an ID number.
public struct Loan: Hashable, Sendable {
    public var loanId: String
    public var borrowerRef: String
    public var amountMinor: Int64
    public var currency: Currency
    public var termMonths: Int
    public var annualRateBps: Int
    public var product: String
    public var riskGrade: String
    public var region: String
    public var channel: String
    /// Unix seconds.
    public var approvedAt: Int64

    public init(
        loanId: String, borrowerRef: String, amountMinor: Int64, currency: Currency, termMonths: Int,
        annualRateBps: Int, product: String, riskGrade: String, region: String, channel: String,
        approvedAt: Int64
    ) {
        self.loanId = loanId
        self.borrowerRef = borrowerRef
        self.amountMinor = amountMinor
        self.currency = currency
        self.termMonths = termMonths
        self.annualRateBps = annualRateBps
        self.product = product
        self.riskGrade = riskGrade
        self.region = region
        self.channel = channel
        self.approvedAt = approvedAt
    }

    public var amount: Money { Money(amountMinor: amountMinor, currency: currency) }

    /// Named bounds on a loan's fields. Anything outside is refused at the edge with the field named.
    public enum Limits {
        public static let idBytesMax = 64
        public static let textBytesMax = 64
        public static let amountMinorMax: Int64 = 1_000_000_000_000  // 10 billion in a 2-decimal currency
        public static let termMonthsMax = 480
        public static let annualRateBpsMax = 100_000
        public static let riskGrades: Set<String> = ["A", "B", "C", "D", "E"]
    }

    /// The numeric and enumerated fields routing depends on; the first problem, or nil. The router
    /// checks only these (identifier formats are the edge's job, `validationProblem()`), so a
    /// decision costs no string scans.
    public func routingProblem() -> (field: String, message: String)? {
        if amountMinor <= 0 { return ("amountMinor", "must be positive") }
        if amountMinor > Limits.amountMinorMax { return ("amountMinor", "exceeds \(Limits.amountMinorMax)") }
        if termMonths < 1 || termMonths > Limits.termMonthsMax { return ("termMonths", "must be 1...\(Limits.termMonthsMax)") }
        if annualRateBps < 0 || annualRateBps > Limits.annualRateBpsMax {
            return ("annualRateBps", "must be 0...\(Limits.annualRateBpsMax)")
        }
        if approvedAt < 0 { return ("approvedAt", "must be unix seconds ≥ 0") }
        return nil
    }

    /// Checks every field; returns the first problem as (field, message), or nil when the loan is sound.
    public func validationProblem() -> (field: String, message: String)? {
        func checkId(_ value: String, _ field: String) -> (String, String)? {
            if value.isEmpty { return (field, "must not be empty") }
            if value.utf8.count > Limits.idBytesMax { return (field, "longer than \(Limits.idBytesMax) bytes") }
            var copy = value
            let ok = copy.withUTF8 { bytes in
                bytes.allSatisfy { b in
                    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                        || b == 0x2D || b == 0x5F || b == 0x2E || b == 0x3A
                }
            }
            return ok ? nil : (field, "may contain only A-Z a-z 0-9 - _ . :")
        }
        if let p = checkId(loanId, "loanId") { return p }
        if let p = checkId(borrowerRef, "borrowerRef") { return p }
        if let p = routingProblem() { return p }
        if !Limits.riskGrades.contains(riskGrade) { return ("riskGrade", "must be one of A, B, C, D, E") }
        if let p = checkId(product, "product") { return p }
        if let p = checkId(region, "region") { return p }
        if let p = checkId(channel, "channel") { return p }
        return nil
    }
}

import LendingCore

/// The wire form of loans and routing decisions (the API's and `jointlend route`'s JSON).
public enum LoanCodec {
    /// Why a loan body was refused: the first problem, naming the field.
    public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
        public let field: String
        public let message: String
        public var description: String { "\(field): \(message)" }
    }

    static let fields: Set<String> = ["loanId", "borrowerRef", "amountMinor", "currency", "termMonths", "annualRateBps",
                                      "product", "riskGrade", "region", "channel", "approvedAt"]

    /// Decodes and validates a loan. The error names the first bad field (`$.amountMinor`).
    public static func decodeLoan(_ bytes: [UInt8]) throws(DecodeError) -> Loan {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch { throw DecodeError(field: "$", message: error.description) }
        return try decodeLoan(json)
    }

    public static func decodeLoan(_ json: JSONValue) throws(DecodeError) -> Loan {
        let log = ProblemLog()
        let loan = decode(json, log: log)
        if let first = log.problems.first { throw DecodeError(field: first.path, message: first.message) }
        guard let loan else { throw DecodeError(field: "$", message: "not a loan") }
        if let p = loan.validationProblem() { throw DecodeError(field: "$.\(p.field)", message: p.message) }
        return loan
    }

    static func decode(_ json: JSONValue, log: ProblemLog) -> Loan? {
        guard let o = ObjectReader(json, path: "$", log: log) else { return nil }
        o.rejectUnknown(fields)
        let loanId = o.string("loanId", bytesMax: Loan.Limits.idBytesMax)
        let borrower = o.string("borrowerRef", bytesMax: Loan.Limits.idBytesMax)
        let amount = o.int64("amountMinor", in: 1...Loan.Limits.amountMinorMax)
        var currency: Currency?
        if let code = o.string("currency", bytesMax: 8) {
            currency = Currency(code: code)
            if currency == nil { log.add("$.currency", "unknown currency; expected one of \(Currency.supported.keys.sorted().joined(separator: ", "))") }
        }
        let term = o.int("termMonths", in: 1...Loan.Limits.termMonthsMax)
        let rate = o.int("annualRateBps", in: 0...Loan.Limits.annualRateBpsMax)
        let product = o.string("product", bytesMax: Loan.Limits.textBytesMax)
        let grade = o.string("riskGrade", bytesMax: 1)
        let region = o.string("region", bytesMax: Loan.Limits.textBytesMax)
        let channel = o.string("channel", bytesMax: Loan.Limits.textBytesMax)
        let approvedAt = o.int64("approvedAt", in: 0...253_402_300_799)
        guard let loanId, let borrower, let amount, let currency, let term, let rate, let product, let grade, let region, let channel, let approvedAt else {
            return nil
        }
        return Loan(loanId: loanId, borrowerRef: borrower, amountMinor: amount, currency: currency, termMonths: term, annualRateBps: rate,
                    product: product, riskGrade: grade, region: region, channel: channel, approvedAt: approvedAt)
    }

    public static func encode(_ loan: Loan) -> JSONValue {
        .object([
            ("loanId", .string(loan.loanId)), ("borrowerRef", .string(loan.borrowerRef)), ("amountMinor", .number(String(loan.amountMinor))),
            ("currency", .string(loan.currency.code)), ("termMonths", .number(String(loan.termMonths))),
            ("annualRateBps", .number(String(loan.annualRateBps))), ("product", .string(loan.product)), ("riskGrade", .string(loan.riskGrade)),
            ("region", .string(loan.region)), ("channel", .string(loan.channel)), ("approvedAt", .number(String(loan.approvedAt))),
        ])
    }

    /// `{"decision":"planned"|"rejected","ruleId":…,"ruleVersion":…,"reason":…,"tranches":[{"funderId","shareBps","amountMinor"}]}`
    public static func encode(_ decision: RoutingDecision) -> JSONValue {
        func opt(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        func optInt(_ i: Int?) -> JSONValue { i.map { .number(String($0)) } ?? .null }
        switch decision {
        case .planned(let plan):
            return .object([
                ("decision", .string("planned")), ("ruleId", .string(plan.ruleId)), ("ruleVersion", .number(String(plan.ruleVersion))),
                ("reason", .null),
                ("tranches", .array(plan.tranches.map { t in
                    .object([("funderId", .string(t.funderId)), ("shareBps", .number(String(t.shareBps))), ("amountMinor", .number(String(t.amountMinor)))])
                })),
            ])
        case .rejected(let r):
            return .object([
                ("decision", .string("rejected")), ("ruleId", opt(r.ruleId)), ("ruleVersion", optInt(r.ruleVersion)),
                ("reason", .string(r.code.rawValue)), ("detail", .string(r.detail)), ("tranches", .array([])),
            ])
        }
    }
}

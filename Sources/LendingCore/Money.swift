/// An ISO 4217 currency with the number of minor-unit digits the gateway books it in.
public struct Currency: Hashable, Sendable, CustomStringConvertible {
    public let code: String
    public let minorUnitDigits: Int

    /// The currencies the gateway accepts. Anything else is rejected at the edge.
    public static let supported: [String: Currency] = [
        "CNY": Currency(code: "CNY", minorUnitDigits: 2),
        "INR": Currency(code: "INR", minorUnitDigits: 2),
        "HKD": Currency(code: "HKD", minorUnitDigits: 2),
        "USD": Currency(code: "USD", minorUnitDigits: 2),
        "EUR": Currency(code: "EUR", minorUnitDigits: 2),
    ]

    public static let cny = Currency(code: "CNY", minorUnitDigits: 2)
    public static let inr = Currency(code: "INR", minorUnitDigits: 2)

    private init(code: String, minorUnitDigits: Int) {
        self.code = code
        self.minorUnitDigits = minorUnitDigits
    }

    /// The supported currency with this code, or nil.
    public init?(code: String) {
        guard let c = Currency.supported[code] else { return nil }
        self = c
    }

    public var description: String { code }
}

/// Why a money operation was refused.
public enum MoneyError: Error, Equatable, Sendable {
    case currencyMismatch(String, String)
    case overflow
}

/// An exact amount: Int64 minor units (fen, paise, cents) and a currency. Never a floating point.
public struct Money: Hashable, Sendable, CustomStringConvertible {
    public let amountMinor: Int64
    public let currency: Currency

    public init(amountMinor: Int64, currency: Currency) {
        self.amountMinor = amountMinor
        self.currency = currency
    }

    public static func zero(_ currency: Currency) -> Money { Money(amountMinor: 0, currency: currency) }

    public func adding(_ other: Money) throws(MoneyError) -> Money {
        guard currency == other.currency else { throw .currencyMismatch(currency.code, other.currency.code) }
        let (sum, overflow) = amountMinor.addingReportingOverflow(other.amountMinor)
        if overflow { throw .overflow }
        return Money(amountMinor: sum, currency: currency)
    }

    public func subtracting(_ other: Money) throws(MoneyError) -> Money {
        guard currency == other.currency else { throw .currencyMismatch(currency.code, other.currency.code) }
        let (difference, overflow) = amountMinor.subtractingReportingOverflow(other.amountMinor)
        if overflow { throw .overflow }
        return Money(amountMinor: difference, currency: currency)
    }

    /// `amountMinor` formatted with the currency's decimals, e.g. `10000.01 CNY`. No floating point.
    public var description: String {
        let digits = currency.minorUnitDigits
        guard digits > 0 else { return "\(amountMinor) \(currency.code)" }
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        let magnitude = amountMinor.magnitude
        let whole = magnitude / UInt64(scale)
        let fraction = String(magnitude % UInt64(scale))
        let padded = String(repeating: "0", count: digits - fraction.count) + fraction
        return "\(amountMinor < 0 ? "-" : "")\(whole).\(padded) \(currency.code)"
    }
}

/// Exact splitting of an amount by weights.
public enum Apportionment {
    /// Splits `amountMinor` by `weights` with the largest-remainder method: each part gets
    /// `floor(amount × weight / Σweights)`; the units left over go one each to the parts with the
    /// largest fractional remainders, ties to the earlier part. The parts sum exactly to the amount
    /// and each is within one minor unit of its exact share. `amountMinor` must be ≥ 0 and the
    /// weights ≥ 0 with a positive sum (programmer errors otherwise: callers validate first).
    public static func largestRemainder(_ amountMinor: Int64, weights: [Int64]) -> [Int64] {
        precondition(amountMinor >= 0, "largestRemainder: negative amount")
        var total: Int64 = 0
        for w in weights {
            precondition(w >= 0, "largestRemainder: negative weight")
            total += w
        }
        precondition(total > 0, "largestRemainder: weights sum to zero")
        var parts = [Int64](repeating: 0, count: weights.count)
        var remainders = [Int64](repeating: 0, count: weights.count)
        var assigned: Int64 = 0
        let amount = Int128(amountMinor)
        let sum = Int128(total)
        for i in weights.indices {
            let product = amount * Int128(weights[i])
            parts[i] = Int64(product / sum)
            remainders[i] = Int64(product % sum)
            assigned += parts[i]
        }
        var left = amountMinor - assigned
        // At most weights.count - 1 units are left; hand them out by largest remainder, earliest first.
        while left > 0 {
            var best = -1
            for i in remainders.indices where remainders[i] >= 0 {
                if best < 0 || remainders[i] > remainders[best] { best = i }
            }
            parts[best] += 1
            remainders[best] = -1
            left -= 1
        }
        return parts
    }

    /// `value × numerator / denominator`, rounded half to even, exact (128-bit intermediate).
    public static func mulDivHalfEven(_ value: Int64, _ numerator: Int64, _ denominator: Int64) -> Int64 {
        precondition(denominator > 0, "mulDivHalfEven: denominator must be positive")
        let product = Int128(value) * Int128(numerator)
        let d = Int128(denominator)
        var q = product / d
        var r = product % d
        if r < 0 { q -= 1; r += d }  // floor division
        let twice = r * 2
        if twice > d || (twice == d && q % 2 != 0) { q += 1 }
        return Int64(q)
    }
}

/// What one funder can still take, as the store knows it at routing time.
public struct FunderCapacity: Hashable, Sendable {
    /// Pools: balance available to reserve (excludes what is already reserved or deployed).
    public var availableMinor: Int64
    /// Partners: funded or requested today, in the partner's business day.
    public var quotaUsedTodayMinor: Int64
    /// Partners: outstanding principal, including requested-but-unconfirmed tranches.
    public var exposureMinor: Int64

    public init(availableMinor: Int64 = 0, quotaUsedTodayMinor: Int64 = 0, exposureMinor: Int64 = 0) {
        self.availableMinor = availableMinor
        self.quotaUsedTodayMinor = quotaUsedTodayMinor
        self.exposureMinor = exposureMinor
    }
}

/// The capacities the router reads. A funder missing here has no capacity (fail closed).
public struct CapacitySnapshot: Hashable, Sendable {
    public var funders: [String: FunderCapacity]
    /// Outstanding principal of the loan's borrower before this loan (for per-borrower caps).
    public var borrowerOutstandingMinor: Int64
    /// Funders routing must skip (circuit breaker open, suspended by an operator).
    public var unavailable: Set<String>

    public init(funders: [String: FunderCapacity], borrowerOutstandingMinor: Int64 = 0, unavailable: Set<String> = []) {
        self.funders = funders
        self.borrowerOutstandingMinor = borrowerOutstandingMinor
        self.unavailable = unavailable
    }
}

/// Identifies the allocation sequence of one rule in one rule-set version.
public struct AllocationKey: Hashable, Sendable {
    public var ruleId: String
    public var ruleVersion: Int
    public init(ruleId: String, ruleVersion: Int) {
        self.ruleId = ruleId
        self.ruleVersion = ruleVersion
    }
}

/// Running totals of what each rule has allocated, per funder (DOMAIN.md: T and T_f).
public struct AllocationTotals: Hashable, Sendable {
    /// One rule's totals. Few funders per rule, so a pair of parallel arrays scanned in place beats
    /// a dictionary (no hashing on the routing hot path).
    public struct Entry: Hashable, Sendable {
        public var totalMinor: Int64 = 0
        private var funderIds: [String] = []
        private var amountsMinor: [Int64] = []

        public init(totalMinor: Int64 = 0, perFunderMinor: [String: Int64] = [:]) {
            self.totalMinor = totalMinor
            for (id, amount) in perFunderMinor.sorted(by: { $0.key < $1.key }) {
                funderIds.append(id)
                amountsMinor.append(amount)
            }
        }

        /// What each funder has been allocated under this rule.
        public var perFunderMinor: [String: Int64] {
            get { Dictionary(uniqueKeysWithValues: zip(funderIds, amountsMinor)) }
            set {
                funderIds = []
                amountsMinor = []
                for (id, amount) in newValue.sorted(by: { $0.key < $1.key }) {
                    funderIds.append(id)
                    amountsMinor.append(amount)
                }
            }
        }

        /// What `funderId` has been allocated (T_f), 0 if nothing.
        @inline(__always)
        public func allocatedMinor(_ funderId: String) -> Int64 {
            for i in funderIds.indices where funderIds[i] == funderId { return amountsMinor[i] }
            return 0
        }

        mutating func add(_ funderId: String, _ amountMinor: Int64) {
            totalMinor += amountMinor
            for i in funderIds.indices where funderIds[i] == funderId {
                amountsMinor[i] += amountMinor
                return
            }
            funderIds.append(funderId)
            amountsMinor.append(amountMinor)
        }
    }

    public var byRule: [AllocationKey: Entry]

    public init(byRule: [AllocationKey: Entry] = [:]) { self.byRule = byRule }

    /// Records a decision's allocation so the next loan sees it.
    public mutating func apply(_ update: AllocationUpdate) {
        byRule[update.key, default: Entry()].add(update.funderId, update.amountMinor)
    }
}

/// The allocation a plan made: the store adds it to the totals in the same transaction.
public struct AllocationUpdate: Hashable, Sendable {
    public var key: AllocationKey
    public var funderId: String
    public var amountMinor: Int64
}

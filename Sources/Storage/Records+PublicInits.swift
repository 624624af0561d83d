import LendingCore

extension ConfirmationResult {
    /// For test doubles and benchmarks of the layers above the store.
    public init(trancheId: Int64, trancheState: TrancheState, loanId: String, loanState: LoanState) {
        self.init(trancheId: trancheId, trancheState: trancheState, loanId: loanId, loanState: loanState, replacement: nil, unfundedReason: nil)
    }
}

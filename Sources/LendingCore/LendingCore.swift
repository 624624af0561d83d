// LendingCore module.

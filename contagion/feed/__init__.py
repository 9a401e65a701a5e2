"""The risk feed: the signed document other protocols consume, its EIP-712 domain, the on-chain
RiskOracle client and the solvency commitment it carries."""

"""The embedded DeFi world: node, contracts, deployment, scenarios."""

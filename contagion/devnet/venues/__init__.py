"""Devnet venues: one module per protocol, deploying its contracts and queueing its actions."""

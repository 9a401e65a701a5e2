"""Chainlink price feeds (aggregators behind EACAggregatorProxy)."""

from contagion.protocols.spec import event

PROTOCOL = "chainlink"

ANSWER_UPDATED = event(
    PROTOCOL, "AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt)",
    "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f")
NEW_ROUND = event(
    PROTOCOL, "NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt)",
    "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271")

EVENTS = (ANSWER_UPDATED, NEW_ROUND)

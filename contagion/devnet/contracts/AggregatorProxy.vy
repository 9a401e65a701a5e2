# pragma version ~=0.4.3
"""
@title Chainlink-style feed proxy
@notice One address in front of a sequence of aggregators ("phases"), as Chainlink's
        EACAggregatorProxy: readers call the proxy, the aggregator of the current phase answers
        and logs AnswerUpdated; the proxy logs nothing. phaseId() and phaseAggregators(id) tell
        an indexer which contracts to read the answers of.
"""

from . import AggregatorV3Interface

phaseId: public(uint16)
phaseAggregators: public(HashMap[uint16, address])
owner: public(address)


@deploy
def __init__(first: address):
    self.owner = msg.sender
    self._confirm(first)


@internal
def _confirm(aggregator: address):
    phase: uint16 = self.phaseId + 1
    self.phaseId = phase
    self.phaseAggregators[phase] = aggregator


@external
def confirmAggregator(aggregator: address):
    """Answers come from `aggregator` from now on (a new phase)."""
    assert msg.sender == self.owner, "only owner"
    self._confirm(aggregator)


@view
@external
def aggregator() -> address:
    return self.phaseAggregators[self.phaseId]


@view
@external
def decimals() -> uint8:
    return staticcall AggregatorV3Interface(self.phaseAggregators[self.phaseId]).decimals()


@view
@external
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    return staticcall AggregatorV3Interface(
        self.phaseAggregators[self.phaseId]).latestRoundData()

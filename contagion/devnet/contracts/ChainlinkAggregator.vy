# pragma version ~=0.4.3
"""
@title Chainlink-compatible price / volatility feed
@notice Same events and views as a Chainlink OCR aggregator behind its proxy; the transmitter
        (the scenario's oracle operator) pushes each new answer.
"""

event AnswerUpdated:
    current: indexed(int256)
    roundId: indexed(uint256)
    updatedAt: uint256

event NewRound:
    roundId: indexed(uint256)
    startedBy: indexed(address)
    startedAt: uint256

struct Round:
    answer: int256
    startedAt: uint256
    updatedAt: uint256

decimals: public(uint8)
description: public(String[64])
version: public(constant(uint256)) = 4
latestRound: public(uint256)
transmitter: public(address)
rounds: HashMap[uint256, Round]


@deploy
def __init__(_decimals: uint8, _description: String[64], initial_answer: int256):
    self.decimals = _decimals
    self.description = _description
    self.transmitter = msg.sender
    self._update(initial_answer)


@internal
def _update(answer: int256):
    round_id: uint256 = self.latestRound + 1
    self.latestRound = round_id
    self.rounds[round_id] = Round(answer=answer, startedAt=block.timestamp,
                                  updatedAt=block.timestamp)
    log NewRound(roundId=round_id, startedBy=msg.sender, startedAt=block.timestamp)
    log AnswerUpdated(current=answer, roundId=round_id, updatedAt=block.timestamp)


@external
def transmit(answer: int256):
    assert msg.sender == self.transmitter, "only transmitter"
    self._update(answer)


@view
@external
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    r: Round = self.rounds[self.latestRound]
    rid: uint80 = convert(self.latestRound, uint80)
    return (rid, r.answer, r.startedAt, r.updatedAt, rid)


@view
@external
def getRoundData(round_id: uint80) -> (uint80, int256, uint256, uint256, uint80):
    r: Round = self.rounds[convert(round_id, uint256)]
    assert r.updatedAt > 0, "No data present"
    return (round_id, r.answer, r.startedAt, r.updatedAt, round_id)


@view
@external
def latestAnswer() -> int256:
    return self.rounds[self.latestRound].answer


@view
@external
def latestTimestamp() -> uint256:
    return self.rounds[self.latestRound].updatedAt

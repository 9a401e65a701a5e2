# pragma version ~=0.4.3
"""
@title Morpho-style Chainlink oracle (MorphoChainlinkOracleV2 without vaults or second feeds)
@notice price() is one unit of collateral quoted in loan-token units, scaled by 1e36, from a
        base feed (collateral/USD) and a quote feed (loan/USD):
        SCALE_FACTOR * baseAnswer / quoteAnswer with
        SCALE_FACTOR = 10**(36 + loanDecimals + quoteFeedDecimals - collateralDecimals
                            - baseFeedDecimals).
        A quote feed of address 0 means the loan token is the unit (answer 1, 0 decimals).
"""
import AggregatorV3Interface

BASE_FEED_1: public(immutable(address))
QUOTE_FEED_1: public(immutable(address))
SCALE_FACTOR: public(immutable(uint256))


@deploy
def __init__(base_feed: address, quote_feed: address, base_token_decimals: uint8,
             quote_token_decimals: uint8):
    assert base_feed != empty(address), "no base feed"
    BASE_FEED_1 = base_feed
    QUOTE_FEED_1 = quote_feed
    base_feed_decimals: uint256 = convert(
        staticcall AggregatorV3Interface(base_feed).decimals(), uint256)
    quote_feed_decimals: uint256 = 0
    if quote_feed != empty(address):
        quote_feed_decimals = convert(
            staticcall AggregatorV3Interface(quote_feed).decimals(), uint256)
    up: uint256 = 36 + convert(quote_token_decimals, uint256) + quote_feed_decimals
    down: uint256 = convert(base_token_decimals, uint256) + base_feed_decimals
    # As in Morpho, the exponent must not be negative (the constructor reverts otherwise).
    assert up >= down, "negative scale exponent"
    SCALE_FACTOR = 10 ** (up - down)


@internal
@view
def _answer(feed: address) -> uint256:
    if feed == empty(address):
        return 1
    round_id: uint80 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in: uint80 = 0
    round_id, answer, started_at, updated_at, answered_in = staticcall AggregatorV3Interface(
        feed).latestRoundData()
    assert answer > 0, "non-positive answer"
    return convert(answer, uint256)


@view
@external
def price() -> uint256:
    return SCALE_FACTOR * self._answer(BASE_FEED_1) // self._answer(QUOTE_FEED_1)

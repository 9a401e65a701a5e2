# pragma version ~=0.4.3
"""
@title Morpho-Blue-compatible lending singleton with isolated markets
@notice Same entry points, views, events and share math (virtual shares 1e6, virtual assets 1,
        Morpho's rounding directions) as Morpho Blue, interest included: a market whose IRM
        is not address 0 accrues, on every entry point that accrues in Morpho, the IRM's
        per-second rate compounded by Morpho's three-term Taylor series, and mints the fee's
        share of it to the fee recipient (AccrueInterest, SetFee, SetFeeRecipient as Morpho
        emits them). Devnet restrictions: callback `data` must be empty; no flash loans or
        signature authorizations.

        Risk oracle (Contagion's RiskOracle.vy), unset by default. Once the owner sets it, the
        singleton obeys its markets (this contract, token): supply and borrow of a frozen loan
        token and supplyCollateral of a frozen collateral token revert with "market frozen"
        (also when this venue is halted); withdraw, repay, withdrawCollateral and liquidate
        stay open. A margin cut of n bps on the collateral token lowers the LLTV used in
        health checks (borrow, withdrawCollateral, liquidate) by n * 1e14, saturating at 0;
        the liquidation incentive keeps the market's own LLTV.
"""
from ethereum.ercs import IERC20
import IRiskOracle

interface IOracle:
    def price() -> uint256: view

struct MarketParams:
    loanToken: address
    collateralToken: address
    oracle: address
    irm: address
    lltv: uint256

struct Position:
    supplyShares: uint256
    borrowShares: uint128
    collateral: uint128

struct Market:
    totalSupplyAssets: uint128
    totalSupplyShares: uint128
    totalBorrowAssets: uint128
    totalBorrowShares: uint128
    lastUpdate: uint128
    fee: uint128

interface IIrm:
    def borrowRate(marketParams: MarketParams, market: Market) -> uint256: nonpayable

event SetOwner:
    newOwner: indexed(address)

event SetFee:
    id: indexed(bytes32)
    newFee: uint256

event SetFeeRecipient:
    newFeeRecipient: indexed(address)

event AccrueInterest:
    id: indexed(bytes32)
    prevBorrowRate: uint256
    interest: uint256
    feeShares: uint256

event EnableIrm:
    irm: indexed(address)

event EnableLltv:
    lltv: uint256

event CreateMarket:
    id: indexed(bytes32)
    marketParams: MarketParams

event Supply:
    id: indexed(bytes32)
    caller: indexed(address)
    onBehalf: indexed(address)
    assets: uint256
    shares: uint256

event Withdraw:
    id: indexed(bytes32)
    caller: address
    onBehalf: indexed(address)
    receiver: indexed(address)
    assets: uint256
    shares: uint256

event Borrow:
    id: indexed(bytes32)
    caller: address
    onBehalf: indexed(address)
    receiver: indexed(address)
    assets: uint256
    shares: uint256

event Repay:
    id: indexed(bytes32)
    caller: indexed(address)
    onBehalf: indexed(address)
    assets: uint256
    shares: uint256

event SupplyCollateral:
    id: indexed(bytes32)
    caller: indexed(address)
    onBehalf: indexed(address)
    assets: uint256

event WithdrawCollateral:
    id: indexed(bytes32)
    caller: address
    onBehalf: indexed(address)
    receiver: indexed(address)
    assets: uint256

event Liquidate:
    id: indexed(bytes32)
    caller: indexed(address)
    borrower: indexed(address)
    repaidAssets: uint256
    repaidShares: uint256
    seizedAssets: uint256
    badDebtAssets: uint256
    badDebtShares: uint256

event SetAuthorization:
    caller: indexed(address)
    authorizer: indexed(address)
    authorized: indexed(address)
    newIsAuthorized: bool

WAD: constant(uint256) = 10**18
ORACLE_PRICE_SCALE: constant(uint256) = 10**36
VIRTUAL_SHARES: constant(uint256) = 10**6
VIRTUAL_ASSETS: constant(uint256) = 1
MAX_LIQUIDATION_INCENTIVE_FACTOR: constant(uint256) = 115 * 10**16
LIQUIDATION_CURSOR: constant(uint256) = 3 * 10**17
MAX_CALLBACK_DATA: constant(uint256) = 1024
MAX_FEE: constant(uint256) = 25 * 10**16

owner: public(address)
feeRecipient: public(address)
isIrmEnabled: public(HashMap[address, bool])
isLltvEnabled: public(HashMap[uint256, bool])
isAuthorized: public(HashMap[address, HashMap[address, bool]])
positions: HashMap[bytes32, HashMap[address, Position]]
markets: HashMap[bytes32, Market]
params: HashMap[bytes32, MarketParams]
riskOracle: public(address)  # empty: no freezes, no margin cuts


@deploy
def __init__():
    self.owner = msg.sender


# -- math (MathLib / SharesMathLib) ----------------------------------------------------------

@internal
@pure
def _mul_div_down(x: uint256, y: uint256, d: uint256) -> uint256:
    return x * y // d


@internal
@pure
def _mul_div_up(x: uint256, y: uint256, d: uint256) -> uint256:
    return (x * y + (d - 1)) // d


@internal
@pure
def _to_shares_down(assets: uint256, total_assets: uint256, total_shares: uint256) -> uint256:
    return self._mul_div_down(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


@internal
@pure
def _to_shares_up(assets: uint256, total_assets: uint256, total_shares: uint256) -> uint256:
    return self._mul_div_up(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


@internal
@pure
def _to_assets_down(shares: uint256, total_assets: uint256, total_shares: uint256) -> uint256:
    return self._mul_div_down(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


@internal
@pure
def _to_assets_up(shares: uint256, total_assets: uint256, total_shares: uint256) -> uint256:
    return self._mul_div_up(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


@internal
@pure
def _exactly_one_zero(x: uint256, y: uint256) -> bool:
    return (x == 0) != (y == 0)


# -- helpers ----------------------------------------------------------------------------------

@internal
@pure
def _id(marketParams: MarketParams) -> bytes32:
    return keccak256(abi_encode(marketParams))


@internal
@view
def _created_id(marketParams: MarketParams) -> bytes32:
    market_id: bytes32 = self._id(marketParams)
    assert self.markets[market_id].lastUpdate != 0, "market not created"
    return market_id


@internal
@pure
def _w_taylor_compounded(x: uint256, n: uint256) -> uint256:
    # e^(x n) - 1 to three terms, as MathLib.wTaylorCompounded
    first: uint256 = x * n
    second: uint256 = self._mul_div_down(first, first, 2 * WAD)
    third: uint256 = self._mul_div_down(second, first, 3 * WAD)
    return first + second + third


@internal
def _accrue_interest(marketParams: MarketParams, market_id: bytes32):
    elapsed: uint256 = block.timestamp - convert(self.markets[market_id].lastUpdate, uint256)
    if elapsed == 0:
        return
    if marketParams.irm != empty(address):
        rate: uint256 = extcall IIrm(marketParams.irm).borrowRate(marketParams,
                                                                  self.markets[market_id])
        m: Market = self.markets[market_id]
        interest: uint256 = self._mul_div_down(convert(m.totalBorrowAssets, uint256),
                                               self._w_taylor_compounded(rate, elapsed), WAD)
        total_supply: uint256 = convert(m.totalSupplyAssets, uint256) + interest
        self.markets[market_id].totalBorrowAssets += convert(interest, uint128)
        self.markets[market_id].totalSupplyAssets = convert(total_supply, uint128)
        fee_shares: uint256 = 0
        if m.fee != 0:
            # the supply already holds the fee: shares are priced as if it did not
            fee_amount: uint256 = self._mul_div_down(interest, convert(m.fee, uint256), WAD)
            fee_shares = self._to_shares_down(fee_amount, total_supply - fee_amount,
                                              convert(m.totalSupplyShares, uint256))
            self.positions[market_id][self.feeRecipient].supplyShares += fee_shares
            self.markets[market_id].totalSupplyShares += convert(fee_shares, uint128)
        log AccrueInterest(id=market_id, prevBorrowRate=rate, interest=interest,
                           feeShares=fee_shares)
    self.markets[market_id].lastUpdate = convert(block.timestamp, uint128)


@internal
@view
def _is_sender_authorized(onBehalf: address) -> bool:
    return msg.sender == onBehalf or self.isAuthorized[onBehalf][msg.sender]


@internal
@view
def _is_healthy_at(marketParams: MarketParams, market_id: bytes32, borrower: address,
                   collateral_price: uint256) -> bool:
    p: Position = self.positions[market_id][borrower]
    m: Market = self.markets[market_id]
    borrowed: uint256 = self._to_assets_up(convert(p.borrowShares, uint256),
                                           convert(m.totalBorrowAssets, uint256),
                                           convert(m.totalBorrowShares, uint256))
    lltv: uint256 = marketParams.lltv
    if self.riskOracle != empty(address):
        cut: uint256 = convert(staticcall IRiskOracle(self.riskOracle).marginCutBps(
            self, marketParams.collateralToken), uint256) * (WAD // 10000)
        lltv -= min(lltv, cut)
    max_borrow: uint256 = self._mul_div_down(convert(p.collateral, uint256), collateral_price,
                                             ORACLE_PRICE_SCALE) * lltv // WAD
    return max_borrow >= borrowed


@internal
@view
def _is_healthy(marketParams: MarketParams, market_id: bytes32, borrower: address) -> bool:
    if self.positions[market_id][borrower].borrowShares == 0:
        return True
    return self._is_healthy_at(marketParams, market_id, borrower,
                               staticcall IOracle(marketParams.oracle).price())


@internal
@view
def _require_not_frozen(token: address):
    if self.riskOracle != empty(address):
        assert not staticcall IRiskOracle(self.riskOracle).isFrozen(self, token), "market frozen"


@internal
def _pull(token: address, sender: address, amount: uint256):
    assert extcall IERC20(token).transferFrom(sender, self, amount, default_return_value=True), \
        "transferFrom failed"


@internal
def _push(token: address, receiver: address, amount: uint256):
    assert extcall IERC20(token).transfer(receiver, amount, default_return_value=True), \
        "transfer failed"


# -- owner ------------------------------------------------------------------------------------

@external
def setOwner(newOwner: address):
    assert msg.sender == self.owner, "not owner"
    assert newOwner != self.owner, "already set"
    self.owner = newOwner
    log SetOwner(newOwner=newOwner)


@external
def setFee(marketParams: MarketParams, newFee: uint256):
    assert msg.sender == self.owner, "not owner"
    market_id: bytes32 = self._created_id(marketParams)
    assert newFee != convert(self.markets[market_id].fee, uint256), "already set"
    assert newFee <= MAX_FEE, "max fee exceeded"
    self._accrue_interest(marketParams, market_id)  # the old fee applies up to now
    self.markets[market_id].fee = convert(newFee, uint128)
    log SetFee(id=market_id, newFee=newFee)


@external
def setFeeRecipient(newFeeRecipient: address):
    assert msg.sender == self.owner, "not owner"
    assert newFeeRecipient != self.feeRecipient, "already set"
    self.feeRecipient = newFeeRecipient
    log SetFeeRecipient(newFeeRecipient=newFeeRecipient)


@external
def accrueInterest(marketParams: MarketParams):
    self._accrue_interest(marketParams, self._created_id(marketParams))


@external
def setRiskOracle(oracle: address):
    assert msg.sender == self.owner, "not owner"
    self.riskOracle = oracle


@external
def enableIrm(irm: address):
    assert msg.sender == self.owner, "not owner"
    assert not self.isIrmEnabled[irm], "already set"
    self.isIrmEnabled[irm] = True
    log EnableIrm(irm=irm)


@external
def enableLltv(lltv: uint256):
    assert msg.sender == self.owner, "not owner"
    assert not self.isLltvEnabled[lltv], "already set"
    assert lltv < WAD, "max LLTV exceeded"
    self.isLltvEnabled[lltv] = True
    log EnableLltv(lltv=lltv)


@external
def createMarket(marketParams: MarketParams):
    market_id: bytes32 = self._id(marketParams)
    assert self.isIrmEnabled[marketParams.irm], "IRM not enabled"
    assert self.isLltvEnabled[marketParams.lltv], "LLTV not enabled"
    assert self.markets[market_id].lastUpdate == 0, "market already created"
    self.markets[market_id].lastUpdate = convert(block.timestamp, uint128)
    self.params[market_id] = marketParams
    log CreateMarket(id=market_id, marketParams=marketParams)
    if marketParams.irm != empty(address):  # lets a stateful IRM start, as Morpho does
        extcall IIrm(marketParams.irm).borrowRate(marketParams, self.markets[market_id])


# -- supply -----------------------------------------------------------------------------------

@external
def supply(marketParams: MarketParams, assets: uint256, shares: uint256, onBehalf: address,
           data: Bytes[MAX_CALLBACK_DATA]) -> (uint256, uint256):
    market_id: bytes32 = self._created_id(marketParams)
    assert self._exactly_one_zero(assets, shares), "inconsistent input"
    assert onBehalf != empty(address), "zero address"
    assert len(data) == 0, "devnet: no callbacks"
    self._require_not_frozen(marketParams.loanToken)
    self._accrue_interest(marketParams, market_id)
    m: Market = self.markets[market_id]
    a: uint256 = assets
    s: uint256 = shares
    if a > 0:
        s = self._to_shares_down(a, convert(m.totalSupplyAssets, uint256),
                                 convert(m.totalSupplyShares, uint256))
    else:
        a = self._to_assets_up(s, convert(m.totalSupplyAssets, uint256),
                               convert(m.totalSupplyShares, uint256))
    self.positions[market_id][onBehalf].supplyShares += s
    self.markets[market_id].totalSupplyShares += convert(s, uint128)
    self.markets[market_id].totalSupplyAssets += convert(a, uint128)
    log Supply(id=market_id, caller=msg.sender, onBehalf=onBehalf, assets=a, shares=s)
    self._pull(marketParams.loanToken, msg.sender, a)
    return (a, s)


@external
def withdraw(marketParams: MarketParams, assets: uint256, shares: uint256, onBehalf: address,
             receiver: address) -> (uint256, uint256):
    market_id: bytes32 = self._created_id(marketParams)
    assert self._exactly_one_zero(assets, shares), "inconsistent input"
    assert receiver != empty(address), "zero address"
    assert self._is_sender_authorized(onBehalf), "unauthorized"
    self._accrue_interest(marketParams, market_id)
    m: Market = self.markets[market_id]
    a: uint256 = assets
    s: uint256 = shares
    if a > 0:
        s = self._to_shares_up(a, convert(m.totalSupplyAssets, uint256),
                               convert(m.totalSupplyShares, uint256))
    else:
        a = self._to_assets_down(s, convert(m.totalSupplyAssets, uint256),
                                 convert(m.totalSupplyShares, uint256))
    self.positions[market_id][onBehalf].supplyShares -= s
    self.markets[market_id].totalSupplyShares -= convert(s, uint128)
    self.markets[market_id].totalSupplyAssets -= convert(a, uint128)
    assert self.markets[market_id].totalBorrowAssets <= \
        self.markets[market_id].totalSupplyAssets, "insufficient liquidity"
    log Withdraw(id=market_id, caller=msg.sender, onBehalf=onBehalf, receiver=receiver,
                 assets=a, shares=s)
    self._push(marketParams.loanToken, receiver, a)
    return (a, s)


# -- borrow -----------------------------------------------------------------------------------

@external
def borrow(marketParams: MarketParams, assets: uint256, shares: uint256, onBehalf: address,
           receiver: address) -> (uint256, uint256):
    market_id: bytes32 = self._created_id(marketParams)
    assert self._exactly_one_zero(assets, shares), "inconsistent input"
    assert receiver != empty(address), "zero address"
    assert self._is_sender_authorized(onBehalf), "unauthorized"
    self._require_not_frozen(marketParams.loanToken)
    self._accrue_interest(marketParams, market_id)
    m: Market = self.markets[market_id]
    a: uint256 = assets
    s: uint256 = shares
    if a > 0:
        s = self._to_shares_up(a, convert(m.totalBorrowAssets, uint256),
                               convert(m.totalBorrowShares, uint256))
    else:
        a = self._to_assets_down(s, convert(m.totalBorrowAssets, uint256),
                                 convert(m.totalBorrowShares, uint256))
    self.positions[market_id][onBehalf].borrowShares += convert(s, uint128)
    self.markets[market_id].totalBorrowShares += convert(s, uint128)
    self.markets[market_id].totalBorrowAssets += convert(a, uint128)
    assert self._is_healthy(marketParams, market_id, onBehalf), "insufficient collateral"
    assert self.markets[market_id].totalBorrowAssets <= \
        self.markets[market_id].totalSupplyAssets, "insufficient liquidity"
    log Borrow(id=market_id, caller=msg.sender, onBehalf=onBehalf, receiver=receiver,
               assets=a, shares=s)
    self._push(marketParams.loanToken, receiver, a)
    return (a, s)


@external
def repay(marketParams: MarketParams, assets: uint256, shares: uint256, onBehalf: address,
          data: Bytes[MAX_CALLBACK_DATA]) -> (uint256, uint256):
    market_id: bytes32 = self._created_id(marketParams)
    assert self._exactly_one_zero(assets, shares), "inconsistent input"
    assert onBehalf != empty(address), "zero address"
    assert len(data) == 0, "devnet: no callbacks"
    self._accrue_interest(marketParams, market_id)
    m: Market = self.markets[market_id]
    a: uint256 = assets
    s: uint256 = shares
    if a > 0:
        s = self._to_shares_down(a, convert(m.totalBorrowAssets, uint256),
                                 convert(m.totalBorrowShares, uint256))
    else:
        a = self._to_assets_up(s, convert(m.totalBorrowAssets, uint256),
                               convert(m.totalBorrowShares, uint256))
    self.positions[market_id][onBehalf].borrowShares -= convert(s, uint128)
    self.markets[market_id].totalBorrowShares -= convert(s, uint128)
    # `a` may exceed totalBorrowAssets by 1 (rounding up); floor at zero as Morpho does.
    total_borrow: uint256 = convert(m.totalBorrowAssets, uint256)
    self.markets[market_id].totalBorrowAssets = convert(total_borrow - min(total_borrow, a),
                                                        uint128)
    log Repay(id=market_id, caller=msg.sender, onBehalf=onBehalf, assets=a, shares=s)
    self._pull(marketParams.loanToken, msg.sender, a)
    return (a, s)


# -- collateral -------------------------------------------------------------------------------

@external
def supplyCollateral(marketParams: MarketParams, assets: uint256, onBehalf: address,
                     data: Bytes[MAX_CALLBACK_DATA]):
    market_id: bytes32 = self._created_id(marketParams)
    assert assets != 0, "zero assets"
    assert onBehalf != empty(address), "zero address"
    assert len(data) == 0, "devnet: no callbacks"
    self._require_not_frozen(marketParams.collateralToken)
    self.positions[market_id][onBehalf].collateral += convert(assets, uint128)
    log SupplyCollateral(id=market_id, caller=msg.sender, onBehalf=onBehalf, assets=assets)
    self._pull(marketParams.collateralToken, msg.sender, assets)


@external
def withdrawCollateral(marketParams: MarketParams, assets: uint256, onBehalf: address,
                       receiver: address):
    market_id: bytes32 = self._created_id(marketParams)
    assert assets != 0, "zero assets"
    assert receiver != empty(address), "zero address"
    assert self._is_sender_authorized(onBehalf), "unauthorized"
    self._accrue_interest(marketParams, market_id)
    self.positions[market_id][onBehalf].collateral -= convert(assets, uint128)
    assert self._is_healthy(marketParams, market_id, onBehalf), "insufficient collateral"
    log WithdrawCollateral(id=market_id, caller=msg.sender, onBehalf=onBehalf,
                           receiver=receiver, assets=assets)
    self._push(marketParams.collateralToken, receiver, assets)


# -- liquidation ------------------------------------------------------------------------------

@external
def liquidate(marketParams: MarketParams, borrower: address, seizedAssets: uint256,
              repaidShares: uint256, data: Bytes[MAX_CALLBACK_DATA]) -> (uint256, uint256):
    market_id: bytes32 = self._created_id(marketParams)
    assert self._exactly_one_zero(seizedAssets, repaidShares), "inconsistent input"
    assert len(data) == 0, "devnet: no callbacks"
    self._accrue_interest(marketParams, market_id)

    collateral_price: uint256 = staticcall IOracle(marketParams.oracle).price()
    assert not self._is_healthy_at(marketParams, market_id, borrower, collateral_price), \
        "position is healthy"

    # min(max factor, 1 / (1 - cursor * (1 - lltv))), in WAD with Morpho's roundings.
    incentive: uint256 = min(
        MAX_LIQUIDATION_INCENTIVE_FACTOR,
        WAD * WAD // (WAD - LIQUIDATION_CURSOR * (WAD - marketParams.lltv) // WAD))

    m: Market = self.markets[market_id]
    total_borrow: uint256 = convert(m.totalBorrowAssets, uint256)
    total_borrow_shares: uint256 = convert(m.totalBorrowShares, uint256)
    seized: uint256 = seizedAssets
    repaid_shares: uint256 = repaidShares
    if seized > 0:
        seized_quoted: uint256 = self._mul_div_up(seized, collateral_price, ORACLE_PRICE_SCALE)
        repaid_shares = self._to_shares_up(self._mul_div_up(seized_quoted, WAD, incentive),
                                           total_borrow, total_borrow_shares)
    else:
        seized = self._mul_div_down(
            self._to_assets_down(repaid_shares, total_borrow, total_borrow_shares) * incentive
            // WAD, ORACLE_PRICE_SCALE, collateral_price)
    repaid_assets: uint256 = self._to_assets_up(repaid_shares, total_borrow, total_borrow_shares)

    self.positions[market_id][borrower].borrowShares -= convert(repaid_shares, uint128)
    total_borrow_shares -= repaid_shares
    total_borrow -= min(total_borrow, repaid_assets)
    self.positions[market_id][borrower].collateral -= convert(seized, uint128)

    # Realise bad debt: a position left with no collateral but some debt is written off
    # against the suppliers.
    bad_debt_shares: uint256 = 0
    bad_debt_assets: uint256 = 0
    total_supply: uint256 = convert(m.totalSupplyAssets, uint256)
    if self.positions[market_id][borrower].collateral == 0:
        bad_debt_shares = convert(self.positions[market_id][borrower].borrowShares, uint256)
        bad_debt_assets = min(total_borrow, self._to_assets_up(bad_debt_shares, total_borrow,
                                                               total_borrow_shares))
        total_borrow -= bad_debt_assets
        total_supply -= bad_debt_assets
        total_borrow_shares -= bad_debt_shares
        self.positions[market_id][borrower].borrowShares = 0

    self.markets[market_id].totalBorrowAssets = convert(total_borrow, uint128)
    self.markets[market_id].totalBorrowShares = convert(total_borrow_shares, uint128)
    self.markets[market_id].totalSupplyAssets = convert(total_supply, uint128)

    log Liquidate(id=market_id, caller=msg.sender, borrower=borrower, repaidAssets=repaid_assets,
                  repaidShares=repaid_shares, seizedAssets=seized, badDebtAssets=bad_debt_assets,
                  badDebtShares=bad_debt_shares)
    self._push(marketParams.collateralToken, msg.sender, seized)
    self._pull(marketParams.loanToken, msg.sender, repaid_assets)
    return (seized, repaid_assets)


# -- authorization ----------------------------------------------------------------------------

@external
def setAuthorization(authorized: address, newIsAuthorized: bool):
    assert newIsAuthorized != self.isAuthorized[msg.sender][authorized], "already set"
    self.isAuthorized[msg.sender][authorized] = newIsAuthorized
    log SetAuthorization(caller=msg.sender, authorizer=msg.sender, authorized=authorized,
                         newIsAuthorized=newIsAuthorized)


# -- views (Morpho's public getters) ----------------------------------------------------------

@view
@external
def position(id: bytes32, user: address) -> (uint256, uint128, uint128):
    p: Position = self.positions[id][user]
    return (p.supplyShares, p.borrowShares, p.collateral)


@view
@external
def market(id: bytes32) -> (uint128, uint128, uint128, uint128, uint128, uint128):
    m: Market = self.markets[id]
    return (m.totalSupplyAssets, m.totalSupplyShares, m.totalBorrowAssets, m.totalBorrowShares,
            m.lastUpdate, m.fee)


@view
@external
def idToMarketParams(id: bytes32) -> (address, address, address, address, uint256):
    p: MarketParams = self.params[id]
    return (p.loanToken, p.collateralToken, p.oracle, p.irm, p.lltv)

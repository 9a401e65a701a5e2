# pragma version ~=0.4.3
"""
@title Options venue: European WETH/USDC calls and puts, naked-margin vaults, RFQ trading
@notice Events are Opyn Gamma's (OtokenFactory + Controller v2) where they fit, so the same
        decoder reads Opyn on mainnet. Writers post collateral in a vault (one collateral asset,
        up to MAX_SHORTS short series), quote premiums, and buyers lift quotes: the venue mints
        the buyer's oTokens as the writer's short. A vault's margin (USD, 8 decimals) sums, over
        its shorts, amount * min(full, intrinsic + shock * spot), full = spot for a call and
        strike for a put; collateral counts at oracle price less a haircut. Under-margined
        vaults are liquidated by oToken holders at intrinsic + penalty * spot per option.
        After expiry the series' price is frozen, vaults pay what their shorts owe into a
        per-series settlement pool and holders redeem the intrinsic value from it.
@dev Every trade records strike, expiry, size, premium and the implied vol used
     (devnet-only OptionTraded event).
     Simplifications against Opyn: the expiry price is the feed's answer at the first
     settlement action after expiry (no oracle pricer/dispute window); intrinsic value is in
     USD and paid in the strike asset USDC at its feed price (or another collateral pool, see
     `redeem`); holders are paid only from what settled vaults put in the series' pool;
     liquidation is at a fixed penalty, not a Dutch auction (auctionStartingRound = 0);
     margin rounds up, payouts round down.
"""
from ethereum.ercs import IERC20
import AggregatorV3Interface


interface IOToken:
    def initialize(_controller: address, _underlying: address, _strike: address,
             _collateral: address, _strike_price: uint256, _expiry: uint256,
             _is_put: bool): nonpayable
    def mintOtoken(account: address, amount: uint256): nonpayable
    def burnOtoken(account: address, amount: uint256): nonpayable


# --- Opyn Gamma events (real signatures) -------------------------------------------------------
event OtokenCreated:
    tokenAddress: address
    creator: address
    underlying: indexed(address)
    strike: indexed(address)
    collateral: indexed(address)
    strikePrice: uint256
    expiry: uint256
    isPut: bool

event VaultOpened:
    accountOwner: indexed(address)
    vaultId: uint256
    vaultType: indexed(uint256)

event CollateralAssetDeposited:
    asset: indexed(address)
    accountOwner: indexed(address)
    sender: indexed(address)
    vaultId: uint256
    amount: uint256

event CollateralAssetWithdrawed:
    asset: indexed(address)
    AccountOwner: indexed(address)
    to: indexed(address)
    vaultId: uint256
    amount: uint256

event ShortOtokenMinted:
    otoken: indexed(address)
    AccountOwner: indexed(address)
    to: indexed(address)
    vaultId: uint256
    amount: uint256

event ShortOtokenBurned:
    otoken: indexed(address)
    AccountOwner: indexed(address)
    sender: indexed(address)
    vaultId: uint256
    amount: uint256

event Redeem:
    otoken: indexed(address)
    redeemer: indexed(address)
    receiver: indexed(address)
    collateralAsset: address
    otokenBurned: uint256
    payout: uint256

event VaultSettled:
    accountOwner: indexed(address)
    oTokenAddress: indexed(address)
    to: address
    payout: uint256
    vaultId: uint256
    vaultType: indexed(uint256)

event VaultLiquidated:
    liquidator: indexed(address)
    receiver: indexed(address)
    vaultOwner: indexed(address)
    auctionPrice: uint256
    auctionStartingRound: uint256
    collateralPayout: uint256
    debtAmount: uint256
    vaultId: uint256

# --- devnet-only events -------------------------------------------------------------------------
event OptionTraded:
    otoken: indexed(address)
    buyer: indexed(address)
    seller: indexed(address)
    vaultId: uint256
    isPut: bool
    strikePrice: uint256
    expiry: uint256
    amount: uint256
    premium: uint256
    impliedVol: uint256

event VaultBadDebt:
    vaultOwner: indexed(address)
    vaultId: uint256
    shortfallUsd: uint256


struct Collateral:
    enabled: bool
    feed: address
    decimals: uint256
    haircut_bps: uint256

struct Series:
    exists: bool
    is_put: bool
    strike: uint256  # USD, 8 decimals
    expiry: uint256

struct Vault:
    exists: bool
    asset: address
    collateral: uint256
    shorts: DynArray[address, MAX_SHORTS]  # every series ever shorted, amounts kept apart
    settled: bool
    defaulted: bool

struct Quote:
    premium_per_option: uint256  # USDC raw units per 1e8 oTokens
    implied_vol: uint256  # 1e8 fixed point
    remaining: uint256


NAKED_MARGIN: constant(uint256) = 1  # Opyn's vaultType for partially collateralised vaults
BPS: constant(uint256) = 10_000
ONE_OPTION: constant(uint256) = 10**8  # oTokens and USD values have 8 decimals
MAX_COLLATERALS: constant(uint256) = 8
MAX_SHORTS: constant(uint256) = 16

owner: public(address)
weth: public(address)
usdc: public(address)
weth_feed: public(address)
otoken_impl: public(address)
shock_bps: public(uint256)
penalty_bps: public(uint256)

collaterals: public(HashMap[address, Collateral])
collateral_list: public(DynArray[address, MAX_COLLATERALS])
series: HashMap[address, Series]
series_by_key: HashMap[bytes32, address]
otokens: public(DynArray[address, 1024])
vaults: HashMap[address, HashMap[uint256, Vault]]
vault_count: public(HashMap[address, uint256])
short_amount: public(HashMap[address, HashMap[uint256, HashMap[address, uint256]]])
quotes: HashMap[address, HashMap[uint256, HashMap[address, Quote]]]

expiry_price: public(HashMap[address, uint256])  # otoken -> frozen WETH/USD price
settlement_asset_price: public(HashMap[address, HashMap[address, uint256]])
settlement_pool: public(HashMap[address, HashMap[address, uint256]])  # otoken -> asset -> units
bad_debt_usd: public(uint256)


@deploy
def __init__(_weth: address, _usdc: address, _weth_feed: address, _otoken_impl: address,
             _shock_bps: uint256, _penalty_bps: uint256):
    self.owner = msg.sender
    self.weth = _weth
    self.usdc = _usdc
    self.weth_feed = _weth_feed
    self.otoken_impl = _otoken_impl
    self.shock_bps = _shock_bps
    self.penalty_bps = _penalty_bps


# --- admin --------------------------------------------------------------------------------------
@external
def add_collateral(asset: address, price_feed: address, _decimals: uint8, haircut_bps: uint256):
    assert msg.sender == self.owner, "only owner"
    assert haircut_bps < BPS, "haircut too large"
    assert not self.collaterals[asset].enabled, "already added"
    self.collaterals[asset] = Collateral(enabled=True, feed=price_feed,
                                         decimals=convert(_decimals, uint256),
                                         haircut_bps=haircut_bps)
    self.collateral_list.append(asset)


@external
def set_risk_params(_shock_bps: uint256, _penalty_bps: uint256):
    assert msg.sender == self.owner, "only owner"
    self.shock_bps = _shock_bps
    self.penalty_bps = _penalty_bps


@external
def create_series(is_put: bool, strike_price: uint256, expiry: uint256) -> address:
    assert msg.sender == self.owner, "only owner"
    assert strike_price > 0, "zero strike"
    assert expiry > block.timestamp, "expired"
    key: bytes32 = keccak256(abi_encode(is_put, strike_price, expiry))
    assert self.series_by_key[key] == empty(address), "series exists"
    token: address = create_minimal_proxy_to(self.otoken_impl)
    extcall IOToken(token).initialize(self, self.weth, self.usdc, self.usdc, strike_price,
                                      expiry, is_put)
    self.series[token] = Series(exists=True, is_put=is_put, strike=strike_price, expiry=expiry)
    self.series_by_key[key] = token
    self.otokens.append(token)
    log OtokenCreated(tokenAddress=token, creator=msg.sender, underlying=self.weth,
                      strike=self.usdc, collateral=self.usdc, strikePrice=strike_price,
                      expiry=expiry, isPut=is_put)
    return token


# --- pricing and margin -------------------------------------------------------------------------
@internal
@view
def _price(feed: address) -> uint256:
    answer: int256 = (staticcall AggregatorV3Interface(feed).latestRoundData())[1]
    assert answer > 0, "bad price"
    return convert(answer, uint256)


@internal
@pure
def _intrinsic(s: Series, spot: uint256) -> uint256:
    if s.is_put:
        if s.strike > spot:
            return s.strike - spot
        return 0
    if spot > s.strike:
        return spot - s.strike
    return 0


@internal
@view
def _requirement(account: address, vault_id: uint256, v: Vault, spot: uint256) -> uint256:
    total: uint256 = 0
    for otoken: address in v.shorts:
        amount: uint256 = self.short_amount[account][vault_id][otoken]
        if amount == 0:
            continue
        s: Series = self.series[otoken]
        full: uint256 = spot
        if s.is_put:
            full = s.strike
        per_option: uint256 = min(full, self._intrinsic(s, spot) + spot * self.shock_bps // BPS)
        total += (amount * per_option + ONE_OPTION - 1) // ONE_OPTION
    return total


@internal
@view
def _value(v: Vault) -> uint256:
    if v.collateral == 0:
        return 0
    c: Collateral = self.collaterals[v.asset]
    price: uint256 = self._price(c.feed)
    return v.collateral * price * (BPS - c.haircut_bps) // (10**c.decimals * BPS)


@internal
@view
def _vault(account: address, vault_id: uint256) -> Vault:
    v: Vault = self.vaults[account][vault_id]
    assert v.exists, "no such vault"
    return v


@internal
@view
def _check_margin(account: address, vault_id: uint256, v: Vault):
    spot: uint256 = self._price(self.weth_feed)
    assert self._value(v) >= self._requirement(account, vault_id, v, spot), "under margin"


@external
@view
def margin_requirement(account: address, vault_id: uint256) -> uint256:
    return self._requirement(account, vault_id, self._vault(account, vault_id),
                             self._price(self.weth_feed))


@external
@view
def collateral_value(account: address, vault_id: uint256) -> uint256:
    return self._value(self._vault(account, vault_id))


@internal
@view
def _has_expired_short(account: address, vault_id: uint256, v: Vault) -> bool:
    for otoken: address in v.shorts:
        if self.short_amount[account][vault_id][otoken] > 0:
            if block.timestamp >= self.series[otoken].expiry:
                return True
    return False


@internal
@view
def _is_liquidatable(account: address, vault_id: uint256, v: Vault) -> bool:
    """Under margin with a live (unexpired) short that a liquidator could burn."""
    if v.settled:
        return False
    live: bool = False
    for otoken: address in v.shorts:
        if self.short_amount[account][vault_id][otoken] > 0:
            if block.timestamp < self.series[otoken].expiry:
                live = True
    if not live:
        return False
    return self._value(v) < self._requirement(account, vault_id, v, self._price(self.weth_feed))


@external
@view
def is_liquidatable(account: address, vault_id: uint256) -> bool:
    return self._is_liquidatable(account, vault_id, self._vault(account, vault_id))


@external
@view
def series_of(otoken: address) -> (bool, uint256, uint256):
    s: Series = self.series[otoken]
    assert s.exists, "unknown series"
    return (s.is_put, s.strike, s.expiry)


@external
@view
def vault_of(account: address, vault_id: uint256) -> (address, uint256, bool):
    v: Vault = self._vault(account, vault_id)
    return (v.asset, v.collateral, v.settled)


@external
@view
def shorts_of(account: address, vault_id: uint256) -> DynArray[address, MAX_SHORTS]:
    return self._vault(account, vault_id).shorts


@external
@view
def quote_of(writer: address, vault_id: uint256, otoken: address) -> (uint256, uint256, uint256):
    q: Quote = self.quotes[writer][vault_id][otoken]
    return (q.premium_per_option, q.implied_vol, q.remaining)


# --- vaults -------------------------------------------------------------------------------------
@external
def open_vault(collateral_asset: address) -> uint256:
    assert self.collaterals[collateral_asset].enabled, "collateral not accepted"
    vault_id: uint256 = self.vault_count[msg.sender] + 1
    self.vault_count[msg.sender] = vault_id
    self.vaults[msg.sender][vault_id] = Vault(exists=True, asset=collateral_asset, collateral=0,
                                              shorts=[], settled=False, defaulted=False)
    log VaultOpened(accountOwner=msg.sender, vaultId=vault_id, vaultType=NAKED_MARGIN)
    return vault_id


@external
def deposit_collateral(vault_id: uint256, amount: uint256):
    v: Vault = self._vault(msg.sender, vault_id)
    assert not v.settled, "vault settled"
    assert amount > 0, "zero amount"
    assert extcall IERC20(v.asset).transferFrom(msg.sender, self, amount)
    self.vaults[msg.sender][vault_id].collateral = v.collateral + amount
    log CollateralAssetDeposited(asset=v.asset, accountOwner=msg.sender, sender=msg.sender,
                                 vaultId=vault_id, amount=amount)


@external
def withdraw_collateral(vault_id: uint256, amount: uint256):
    v: Vault = self._vault(msg.sender, vault_id)
    assert not v.settled, "vault settled"
    assert not self._has_expired_short(msg.sender, vault_id, v), "settle expired vault"
    v.collateral -= amount
    self._check_margin(msg.sender, vault_id, v)
    self.vaults[msg.sender][vault_id].collateral = v.collateral
    assert extcall IERC20(v.asset).transfer(msg.sender, amount)
    log CollateralAssetWithdrawed(asset=v.asset, AccountOwner=msg.sender, to=msg.sender,
                                  vaultId=vault_id, amount=amount)


# --- trading ------------------------------------------------------------------------------------
@external
def quote(vault_id: uint256, otoken: address, premium_per_option: uint256,
          implied_vol: uint256, max_amount: uint256):
    v: Vault = self._vault(msg.sender, vault_id)
    s: Series = self.series[otoken]
    assert s.exists, "unknown series"
    assert block.timestamp < s.expiry, "series expired"
    assert not v.settled, "vault settled"
    self.quotes[msg.sender][vault_id][otoken] = Quote(premium_per_option=premium_per_option,
                                                      implied_vol=implied_vol,
                                                      remaining=max_amount)


@external
def buy(writer: address, vault_id: uint256, otoken: address, amount: uint256,
        max_premium_total: uint256) -> uint256:
    v: Vault = self._vault(writer, vault_id)
    s: Series = self.series[otoken]
    assert s.exists, "unknown series"
    assert block.timestamp < s.expiry, "series expired"
    assert not v.settled, "vault settled"
    assert amount > 0, "zero amount"
    q: Quote = self.quotes[writer][vault_id][otoken]
    assert q.remaining >= amount, "quote exhausted"
    premium: uint256 = (amount * q.premium_per_option + ONE_OPTION - 1) // ONE_OPTION
    assert premium <= max_premium_total, "premium above limit"

    self.quotes[writer][vault_id][otoken].remaining = q.remaining - amount
    if otoken not in v.shorts:
        v.shorts.append(otoken)
        self.vaults[writer][vault_id].shorts = v.shorts
    self.short_amount[writer][vault_id][otoken] += amount
    self._check_margin(writer, vault_id, v)

    assert extcall IERC20(self.usdc).transferFrom(msg.sender, writer, premium)
    extcall IOToken(otoken).mintOtoken(msg.sender, amount)
    log ShortOtokenMinted(otoken=otoken, AccountOwner=writer, to=msg.sender, vaultId=vault_id,
                          amount=amount)
    log OptionTraded(otoken=otoken, buyer=msg.sender, seller=writer, vaultId=vault_id,
                     isPut=s.is_put, strikePrice=s.strike, expiry=s.expiry, amount=amount,
                     premium=premium, impliedVol=q.implied_vol)
    return premium


@external
def burn_short(vault_id: uint256, otoken: address, amount: uint256):
    v: Vault = self._vault(msg.sender, vault_id)
    assert not v.settled, "vault settled"
    assert block.timestamp < self.series[otoken].expiry, "series expired"
    self.short_amount[msg.sender][vault_id][otoken] -= amount
    extcall IOToken(otoken).burnOtoken(msg.sender, amount)
    log ShortOtokenBurned(otoken=otoken, AccountOwner=msg.sender, sender=msg.sender,
                          vaultId=vault_id, amount=amount)


# --- liquidation --------------------------------------------------------------------------------
@external
def liquidate(account: address, vault_id: uint256, otoken: address, amount: uint256,
              receiver: address) -> uint256:
    v: Vault = self._vault(account, vault_id)
    short: uint256 = self.short_amount[account][vault_id][otoken]
    assert amount > 0 and amount <= short, "bad amount"
    assert v.collateral > 0, "no collateral left"
    s: Series = self.series[otoken]
    assert block.timestamp < s.expiry, "series expired"
    assert self._is_liquidatable(account, vault_id, v), "vault is healthy"

    spot: uint256 = self._price(self.weth_feed)
    auction_price: uint256 = self._intrinsic(s, spot) + spot * self.penalty_bps // BPS
    payout_usd: uint256 = amount * auction_price // ONE_OPTION
    c: Collateral = self.collaterals[v.asset]
    units: uint256 = min(payout_usd * 10**c.decimals // self._price(c.feed), v.collateral)

    self.short_amount[account][vault_id][otoken] = short - amount
    v.collateral -= units
    self.vaults[account][vault_id].collateral = v.collateral
    extcall IOToken(otoken).burnOtoken(msg.sender, amount)
    assert extcall IERC20(v.asset).transfer(receiver, units)
    log VaultLiquidated(liquidator=msg.sender, receiver=receiver, vaultOwner=account,
                        auctionPrice=auction_price, auctionStartingRound=0,
                        collateralPayout=units, debtAmount=amount, vaultId=vault_id)
    if v.collateral == 0:
        shortfall: uint256 = self._requirement(account, vault_id, v, spot)
        if shortfall > 0:
            self.vaults[account][vault_id].defaulted = True
            self.bad_debt_usd += shortfall
            log VaultBadDebt(vaultOwner=account, vaultId=vault_id, shortfallUsd=shortfall)
    return units


# --- settlement ---------------------------------------------------------------------------------
@internal
def _expiry_price(otoken: address) -> uint256:
    """The series' WETH/USD price, read from the feed at the first settlement action after
    expiry and frozen from then on."""
    assert block.timestamp >= self.series[otoken].expiry, "not expired"
    price: uint256 = self.expiry_price[otoken]
    if price == 0:
        price = self._price(self.weth_feed)
        self.expiry_price[otoken] = price
    return price


@internal
def _asset_price(otoken: address, asset: address) -> uint256:
    price: uint256 = self.settlement_asset_price[otoken][asset]
    if price == 0:
        price = self._price(self.collaterals[asset].feed)
        self.settlement_asset_price[otoken][asset] = price
    return price


@external
def settle_vault(vault_id: uint256) -> uint256:
    """Once every short series has expired: each short pays what it owes at the series' frozen
    price into that series' pool (in the vault's collateral, at its frozen price), shorts in
    the order first written, and the rest goes back to the owner. One VaultSettled per short
    series; the collateral returned is reported on the last one (the others report 0)."""
    v: Vault = self._vault(msg.sender, vault_id)
    assert not v.settled, "vault settled"
    assert len(v.shorts) > 0, "no short to settle"
    c: Collateral = self.collaterals[v.asset]
    remaining: uint256 = v.collateral
    shortfall: uint256 = 0
    for otoken: address in v.shorts:
        s: Series = self.series[otoken]
        spot: uint256 = self._expiry_price(otoken)
        amount: uint256 = self.short_amount[msg.sender][vault_id][otoken]
        owed_usd: uint256 = (amount * self._intrinsic(s, spot) + ONE_OPTION - 1) // ONE_OPTION
        price: uint256 = self._asset_price(otoken, v.asset)
        owed_units: uint256 = (owed_usd * 10**c.decimals + price - 1) // price
        paid: uint256 = min(owed_units, remaining)
        if paid < owed_units:
            shortfall += owed_usd - paid * price // 10**c.decimals
        remaining -= paid
        self.settlement_pool[otoken][v.asset] += paid
        self.short_amount[msg.sender][vault_id][otoken] = 0
    if shortfall > 0 and not v.defaulted:
        self.bad_debt_usd += shortfall
        log VaultBadDebt(vaultOwner=msg.sender, vaultId=vault_id, shortfallUsd=shortfall)
    self.vaults[msg.sender][vault_id].collateral = 0
    self.vaults[msg.sender][vault_id].settled = True
    if remaining > 0:
        assert extcall IERC20(v.asset).transfer(msg.sender, remaining)
    last: uint256 = len(v.shorts) - 1
    for i: uint256 in range(MAX_SHORTS):
        if i > last:
            break
        payout: uint256 = 0
        if i == last:
            payout = remaining
        log VaultSettled(accountOwner=msg.sender, oTokenAddress=v.shorts[i], to=msg.sender,
                         payout=payout, vaultId=vault_id, vaultType=NAKED_MARGIN)
    return remaining


@external
def redeem(otoken: address, amount: uint256) -> uint256:
    """Pays the intrinsic value (USD at the frozen expiry price) from the series' settlement
    pool: in USDC when that pool covers it, else in the first other collateral pool (in the
    order collateral was added) that does, at the frozen settlement price of that asset."""
    s: Series = self.series[otoken]
    assert s.exists, "unknown series"
    spot: uint256 = self._expiry_price(otoken)
    payout_usd: uint256 = amount * self._intrinsic(s, spot) // ONE_OPTION
    extcall IOToken(otoken).burnOtoken(msg.sender, amount)
    if payout_usd == 0:
        log Redeem(otoken=otoken, redeemer=msg.sender, receiver=msg.sender,
                   collateralAsset=self.usdc, otokenBurned=amount, payout=0)
        return 0
    order: DynArray[address, MAX_COLLATERALS + 1] = [self.usdc]
    for asset: address in self.collateral_list:
        if asset != self.usdc:
            order.append(asset)
    for asset: address in order:
        c: Collateral = self.collaterals[asset]
        if not c.enabled:
            continue
        units: uint256 = payout_usd * 10**c.decimals // self._asset_price(otoken, asset)
        if units <= self.settlement_pool[otoken][asset]:
            self.settlement_pool[otoken][asset] -= units
            assert extcall IERC20(asset).transfer(msg.sender, units)
            log Redeem(otoken=otoken, redeemer=msg.sender, receiver=msg.sender,
                       collateralAsset=asset, otokenBurned=amount, payout=units)
            return units
    raise "settlement pool short"

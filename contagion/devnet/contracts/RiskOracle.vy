# pragma version ~=0.4.3
"""
@title Contagion RiskOracle
@notice Holds Contagion's freeze recommendations on chain, per market (venue, asset), for
        lending venues to obey. Anyone may relay an update; it is accepted only if it is an
        EIP-712 signature by an allowlisted signer over
          RiskUpdate(address venue,address asset,uint8 action,uint16 marginCutBps,
                     uint256 nonce,uint256 expiry,bytes32 snapshotHash)
        in the domain (name "Contagion Risk Oracle", version "1", chain.id, this contract),
        its nonce is above the last accepted one (one global counter), it has not expired,
        the oracle is not paused, the market is out of its cooldown and the margin cut moves by
        at most maxCutStepBps.

        Actions: 0 normal (lifts the market's freeze, or with asset 0 the venue's halt),
        1 raise_margin, 2 freeze_market (no new supply or borrow of the asset at the venue),
        3 halt (asset 0: the whole venue takes no new supply or borrow). Every update sets the
        market's margin cut to its marginCutBps (a halt's must be 0: a cut is per asset), so a
        freeze carries the current cut and a cut is only ever lifted step by step.
        The owner manages the signers, the cap, the cooldown and the pause; a pause stops
        updates, not what the markets already hold.
"""

struct RiskUpdate:
    venue: address
    asset: address
    action: uint8
    marginCutBps: uint16
    nonce: uint256
    expiry: uint256
    snapshotHash: bytes32

struct Market:
    frozen: bool  # with asset 0: the venue is halted
    marginCutBps: uint16
    lastUpdate: uint256  # block time of the last accepted update

event RiskUpdateAccepted:
    venue: indexed(address)
    asset: indexed(address)
    signer: indexed(address)
    action: uint8
    marginCutBps: uint16
    nonce: uint256
    snapshotHash: bytes32

event SignerSet:
    signer: indexed(address)
    allowed: bool

event ParamsSet:
    maxCutStepBps: uint16
    cooldownSeconds: uint256

event Paused:
    paused: bool

ACTION_NORMAL: constant(uint8) = 0
ACTION_RAISE_MARGIN: constant(uint8) = 1
ACTION_FREEZE_MARKET: constant(uint8) = 2
ACTION_HALT: constant(uint8) = 3
MAX_BPS: constant(uint16) = 10000
# secp256k1n / 2: signatures with a higher s are the malleable twins of valid ones
HALF_CURVE_ORDER: constant(bytes32) = \
    0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
UPDATE_TYPEHASH: constant(bytes32) = keccak256(
    "RiskUpdate(address venue,address asset,uint8 action,uint16 marginCutBps,uint256 nonce,"
    "uint256 expiry,bytes32 snapshotHash)")
NAME_HASH: constant(bytes32) = keccak256("Contagion Risk Oracle")
VERSION_HASH: constant(bytes32) = keccak256("1")

owner: public(address)
isSigner: public(HashMap[address, bool])
paused: public(bool)
lastNonce: public(uint256)
maxCutStepBps: public(uint16)
cooldownSeconds: public(uint256)
market: public(HashMap[address, HashMap[address, Market]])  # venue -> asset (0: venue-wide)


@deploy
def __init__(max_cut_step_bps: uint16, cooldown_seconds: uint256):
    self.owner = msg.sender
    self._set_params(max_cut_step_bps, cooldown_seconds)


# -- views ---------------------------------------------------------------------------------------
@view
@external
def isFrozen(venue: address, asset: address) -> bool:
    """@notice True if the market is frozen or its venue halted: no new supply or borrow."""
    return self.market[venue][asset].frozen or self.market[venue][empty(address)].frozen


@view
@external
def marginCutBps(venue: address, asset: address) -> uint16:
    """@notice How many bps the venue lowers the asset's LTV and liquidation threshold by."""
    return self.market[venue][asset].marginCutBps


@view
@internal
def _domain_separator() -> bytes32:
    # computed per call, so a fork with another chain id rejects signatures made for this one
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@view
@external
def domainSeparator() -> bytes32:
    return self._domain_separator()


@view
@internal
def _hash_update(u: RiskUpdate) -> bytes32:
    struct_hash: bytes32 = keccak256(abi_encode(UPDATE_TYPEHASH, u.venue, u.asset, u.action,
                                                u.marginCutBps, u.nonce, u.expiry,
                                                u.snapshotHash))
    return keccak256(concat(x"1901", self._domain_separator(), struct_hash))


@view
@external
def hashUpdate(update: RiskUpdate) -> bytes32:
    """@notice The EIP-712 digest a signer signs for this update, here."""
    return self._hash_update(update)


# -- the update ----------------------------------------------------------------------------------
@external
def submit(update: RiskUpdate, v: uint8, r: bytes32, s: bytes32):
    """@notice Apply a signed update; callable by anyone (a relayer)."""
    assert not self.paused, "oracle paused"
    assert convert(s, uint256) <= convert(HALF_CURVE_ORDER, uint256), "malleable signature"
    signer: address = ecrecover(self._hash_update(update), v, r, s)
    # ecrecover gives 0 for an invalid signature; 0 is never on the allowlist
    assert self.isSigner[signer], "unknown signer"
    assert update.nonce > self.lastNonce, "nonce not above last"
    assert block.timestamp <= update.expiry, "update expired"
    assert update.venue != empty(address), "no venue"
    assert update.action <= ACTION_HALT, "unknown action"
    venue_wide: bool = update.asset == empty(address)
    if update.action == ACTION_HALT:
        assert venue_wide, "halt is venue-wide: asset must be 0"
    elif update.action != ACTION_NORMAL:
        assert not venue_wide, "action needs an asset"
    assert update.marginCutBps <= MAX_BPS, "cut above 100%"
    assert not venue_wide or update.marginCutBps == 0, "no venue-wide cut"

    m: Market = self.market[update.venue][update.asset]
    step: uint16 = update.marginCutBps - m.marginCutBps if update.marginCutBps >= m.marginCutBps \
        else m.marginCutBps - update.marginCutBps
    assert step <= self.maxCutStepBps, "cut step above cap"
    assert m.lastUpdate == 0 or block.timestamp >= m.lastUpdate + self.cooldownSeconds, \
        "market cooling down"

    if update.action == ACTION_NORMAL:
        m.frozen = False
    elif update.action != ACTION_RAISE_MARGIN:
        m.frozen = True  # freeze_market, or halt on the venue-wide market
    m.marginCutBps = update.marginCutBps
    m.lastUpdate = block.timestamp
    self.market[update.venue][update.asset] = m
    self.lastNonce = update.nonce
    log RiskUpdateAccepted(venue=update.venue, asset=update.asset, signer=signer,
                           action=update.action, marginCutBps=update.marginCutBps,
                           nonce=update.nonce, snapshotHash=update.snapshotHash)


# -- owner ---------------------------------------------------------------------------------------
@internal
def _only_owner():
    assert msg.sender == self.owner, "only owner"


@internal
def _set_params(max_cut_step_bps: uint16, cooldown_seconds: uint256):
    assert max_cut_step_bps <= MAX_BPS, "cap above 100%"
    self.maxCutStepBps = max_cut_step_bps
    self.cooldownSeconds = cooldown_seconds
    log ParamsSet(maxCutStepBps=max_cut_step_bps, cooldownSeconds=cooldown_seconds)


@external
def setParams(max_cut_step_bps: uint16, cooldown_seconds: uint256):
    self._only_owner()
    self._set_params(max_cut_step_bps, cooldown_seconds)


@external
def setSigner(signer: address, allowed: bool):
    self._only_owner()
    assert signer != empty(address), "zero signer"
    self.isSigner[signer] = allowed
    log SignerSet(signer=signer, allowed=allowed)


@external
def setPaused(paused: bool):
    self._only_owner()
    self.paused = paused
    log Paused(paused=paused)

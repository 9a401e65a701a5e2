"""Bad debt at the derivatives venues on simulated price paths: the perps positions and the
written options the DeFi cascade does not liquidate, valued at each path's final prices.

- A perps position (GMX v1 rules) loses size × |price − entry| / entry when the price moved
  against it; what it loses beyond its collateral is the venue's bad debt (the vault's
  `BadDebt`: the LPs pay it).
- An options vault owes Σ amount × intrinsic value of its written options; what that exceeds
  its collateral's value by is the venue's bad debt (the venue's `VaultBadDebt` at settlement:
  the option holders go short).

Positions are valued where the path ends, not monitored along it: a position the venue would
have liquidated earlier, on the way down, shows the loss it would have had at the end, which is
at least the shortfall a timely liquidation leaves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import numpy.typing as npt

__all__ = ["DerivativeBook", "OptionShort", "PerpPosition", "derivatives_at"]

Matrix = npt.NDArray[np.float64]
USD_30 = 10**30  # GMX v1 USD amounts and prices
OPTION_UNIT = 10**8  # oTokens and their strikes: 8 decimals


@dataclass(frozen=True)
class PerpPosition:
    venue: str
    index_token: str
    is_long: bool
    size_usd: float
    collateral_usd: float
    entry_price: float  # USD per index token


@dataclass(frozen=True)
class OptionShort:
    venue: str
    vault: str  # the writer's vault (owner and id): its collateral backs all its shorts
    underlying: str
    is_put: bool
    strike_usd: float
    amount: float  # options written (1 = one unit of the underlying)
    collateral_token: str
    collateral: float  # the vault's collateral, token units (the same on each of its shorts)


@dataclass(frozen=True)
class DerivativeBook:
    perps: list[PerpPosition] = field(default_factory=list)
    options: list[OptionShort] = field(default_factory=list)

    @property
    def venues(self) -> list[str]:
        return sorted({p.venue for p in self.perps} | {o.venue for o in self.options})

    def priced(self, prices: Mapping[str, float]) -> DerivativeBook:
        """The positions whose every token has a price (the others cannot be valued)."""
        return DerivativeBook(
            [p for p in self.perps if p.index_token in prices],
            [o for o in self.options if o.underlying in prices and o.collateral_token in prices])

    def tokens(self) -> set[str]:
        return ({p.index_token for p in self.perps} | {o.underlying for o in self.options}
                | {o.collateral_token for o in self.options})

    def bad_debt_usd(self, prices: Mapping[str, Matrix | float], paths: int) -> Matrix:
        """paths × `venues`: the bad debt each venue is left with at the given prices (per
        token: one price per path, or one for all paths)."""
        venues = self.venues
        out = np.zeros((paths, len(venues)))

        def price(token: str) -> Matrix:
            return np.broadcast_to(np.asarray(prices[token], dtype=np.float64), (paths,))

        for p in self.perps:
            move = (price(p.index_token) - p.entry_price) / p.entry_price
            loss = p.size_usd * np.maximum(-move if p.is_long else move, 0.0)
            out[:, venues.index(p.venue)] += np.maximum(loss - p.collateral_usd, 0.0)
        vaults: dict[tuple[str, str], tuple[Matrix, str, float]] = {}
        for o in self.options:
            spot = price(o.underlying)
            intrinsic = np.maximum(o.strike_usd - spot if o.is_put else spot - o.strike_usd, 0.0)
            owed, _, _ = vaults.get((o.venue, o.vault), (np.zeros(paths), "", 0.0))
            vaults[(o.venue, o.vault)] = (owed + o.amount * intrinsic, o.collateral_token,
                                          o.collateral)
        for (venue, _), (owed, token, units) in vaults.items():
            out[:, venues.index(venue)] += np.maximum(owed - units * price(token), 0.0)
        return out


def derivatives_at(con: duckdb.DuckDBPyConnection, snapshot: int) -> DerivativeBook:
    """The open perps positions and written options at a snapshot, from the marts (positions
    without an entry price, or options whose collateral has no decimals, are left out)."""
    # exact integers over their scale: Python's int / int rounds once, correctly
    perps = [PerpPosition(venue, index, bool(is_long), int(size) / USD_30,
                          int(collateral) / USD_30, int(entry) / USD_30)
             for venue, index, is_long, size, collateral, entry in con.execute(
                 "select venue, index_token, is_long, size_usd_raw, collateral_usd_raw, "
                 "average_price_raw from int_perp_margin where snapshot_block = ? "
                 "and size_usd_raw > 0 and average_price_raw > 0", [snapshot]).fetchall()]
    options = [OptionShort(venue, vault, underlying, bool(is_put), int(strike) / OPTION_UNIT,
                           int(amount) / OPTION_UNIT, token,
                           int(collateral or 0) / 10**int(decimals))
               for venue, vault, underlying, is_put, strike, amount, token, collateral, decimals
               in con.execute(_OPTION_SHORTS, [snapshot]).fetchall()]
    return DerivativeBook(perps, options)


# each written oToken of a vault, with its series and the vault's collateral
_OPTION_SHORTS = """
with vaults as (
    select snapshot_block, venue, owner, vault_id, token, amount_raw, side
    from int_options_vaults
    where snapshot_block = ?
),
margin as (
    select v.venue, v.owner, v.vault_id, v.token, v.amount_raw, t.decimals
    from vaults as v
    join int_tokens as t on t.token = v.token
    where v.side = 'margin'
)
select
    s.venue, s.owner || '#' || s.vault_id, o.underlying, o.is_put, o.strike_price_raw,
    s.amount_raw, m.token, m.amount_raw, m.decimals
from vaults as s
join stg_otokens as o on o.otoken = s.token
join margin as m on m.venue = s.venue and m.owner = s.owner and m.vault_id = s.vault_id
where s.side = 'debt' and s.amount_raw > 0
order by 1, 2, 3
"""


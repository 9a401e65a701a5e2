"""The devnet's RiskOracle: its signer, its guardrails and its deployment.

The cap and the cooldown come from the bundled policy's guardrails, so the chain enforces what
the policy promises:
- cap: `max_threshold_cut` 0.10 is 1000 bps, the most one update may move a market's cut;
- cooldown: `cooldown_windows` 4 × a 25-block window × 12 s a block = 1200 s per market. The
  window is the CLI's and `contagion evaluate`'s default; 12 s is the scenarios' default block
  time. The contract counts seconds, so on a replay mined at 300 or 600 s a block the same
  cooldown spans fewer blocks: a looser guardrail there, not a tighter one.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_account import Account
from eth_account.signers.local import LocalAccount

from contagion.devnet.driver import DEPLOYER, Contract, DevnetDriver
from contagion.policy.model import Guardrails, load_policy

__all__ = ["DEVNET_ORACLE_SIGNER", "SECONDS_PER_BLOCK", "WINDOW_BLOCKS", "deploy_risk_oracle",
           "devnet_oracle_signer", "oracle_params"]

# Anvil's default mnemonic and its account #9: a PUBLIC test key that everyone knows. It signs
# oracle updates on the devnet only; never allowlist it on a network that matters.
DEVNET_MNEMONIC = "test test test test test test test test test test test junk"
DEVNET_SIGNER_PATH = "m/44'/60'/0'/0/9"
DEVNET_ORACLE_SIGNER = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
WINDOW_BLOCKS = 25
SECONDS_PER_BLOCK = 12
BPS = 10_000


def devnet_oracle_signer() -> LocalAccount:
    """The devnet signer's account (anvil's public account #9), derived from the mnemonic."""
    Account.enable_unaudited_hdwallet_features()
    account: LocalAccount = Account.from_mnemonic(DEVNET_MNEMONIC,
                                                  account_path=DEVNET_SIGNER_PATH)
    if account.address != DEVNET_ORACLE_SIGNER:
        raise RuntimeError(f"derived {account.address}, expected {DEVNET_ORACLE_SIGNER}")
    return account


def oracle_params(guardrails: Guardrails | None = None) -> tuple[int, int]:
    """(max cut step in bps, cooldown in seconds) matching the policy's guardrails."""
    g = guardrails or load_policy().guardrails
    return (round(g.max_threshold_cut * BPS),
            g.cooldown_windows * WINDOW_BLOCKS * SECONDS_PER_BLOCK)


def deploy_risk_oracle(driver: DevnetDriver, pools: Sequence[Contract]) -> Contract:
    """Queue the oracle (owned by the deployer), the devnet signer's allowlisting and each
    pool's setRiskOracle; the caller mines."""
    max_step, cooldown = oracle_params()
    oracle = driver.deploy("RiskOracle", max_step, cooldown, label="RiskOracle")
    oracle.tx(DEPLOYER, "setSigner", DEVNET_ORACLE_SIGNER, True)
    for pool in pools:
        pool.tx(DEPLOYER, "setRiskOracle", oracle.address)
    return oracle

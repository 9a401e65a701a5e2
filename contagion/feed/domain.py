"""The EIP-712 domain every Contagion signature is bound to: the feed document and the on-chain
RiskOracle updates share it, so a signature is only good on one chain, for one oracle contract."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

__all__ = ["DOMAIN_NAME", "DOMAIN_VERSION", "EIP712_DOMAIN_TYPE", "eip712_domain"]

DOMAIN_NAME = "Contagion Risk Oracle"
DOMAIN_VERSION = "1"
# The domain's type, as a full EIP-712 message declares it (and RiskOracle.vy hashes it).
EIP712_DOMAIN_TYPE = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                      {"name": "chainId", "type": "uint256"},
                      {"name": "verifyingContract", "type": "address"}]


def eip712_domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The domain as eth-account's encode_typed_data takes it (name, version, chainId,
    verifyingContract)."""
    if chain_id <= 0:
        raise ValueError(f"chain id must be positive, got {chain_id}")
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id,
            "verifyingContract": to_checksum_address(verifying_contract)}

"""Contagion's own RiskOracle (contagion/devnet/contracts/RiskOracle.vy, docs/oracle.md): the
updates it accepted and its governance, so what the lending venues were told is on record."""

from __future__ import annotations

from contagion.protocols.spec import event

PROTOCOL = "risk_oracle"

RISK_UPDATE_ACCEPTED = event(
    PROTOCOL, "RiskUpdateAccepted(address indexed venue, address indexed asset, "
              "address indexed signer, uint8 action, uint16 marginCutBps, uint256 nonce, "
              "bytes32 snapshotHash)",
    "0x800b3bdb1a4a63c4c04f33cb734e9679c236fcfbebd21904713c9f1f9da73f57")
SIGNER_SET = event(
    PROTOCOL, "SignerSet(address indexed signer, bool allowed)",
    "0xfc4acb499491cd850a8a21ab98c7f128850c0f0e5f1a875a62b7fa055c2ecf19")
PARAMS_SET = event(
    PROTOCOL, "ParamsSet(uint16 maxCutStepBps, uint256 cooldownSeconds)",
    "0x4d9d2b28beb9516d81ca7bfa381d381c63a83c86bb1c2e4a9cc3b4e3c1520afc")
PAUSED = event(
    PROTOCOL, "Paused(bool paused)",
    "0x0e2fb031ee032dc02d8011dc50b816eb450cf856abd8261680dac74f72165bd2")

EVENTS = (RISK_UPDATE_ACCEPTED, SIGNER_SET, PARAMS_SET, PAUSED)

# pragma version ~=0.4.3
"""
@title Solvency commitment verifier
@notice Checks an inclusion proof of contagion.feed.commitment on chain: the leaf's hash, the
        siblings folded in bottom up, and the hash and sums reached against a venue's
        published root and totals. Same encoding as the Python side (docs/schema.md,
        fct_solvency_commitments): 0x00 ‖ abi.encode(account, collateral, debt) for a leaf,
        0x01 ‖ abi.encode(left hash, sums, right hash, sums) for a node; a sum that overflows
        uint256 reverts.
"""

MAX_DEPTH: constant(uint256) = 64


struct Sibling:
    left: bool  # the sibling is the left child
    hash: bytes32
    collateral: uint256
    debt: uint256


@internal
@pure
def _fold(account: address, collateral: uint256, debt: uint256,
          siblings: DynArray[Sibling, MAX_DEPTH]) -> (bytes32, uint256, uint256):
    node: bytes32 = keccak256(concat(x"00", abi_encode(account, collateral, debt)))
    c: uint256 = collateral
    d: uint256 = debt
    for s: Sibling in siblings:
        if s.left:
            node = keccak256(concat(x"01", abi_encode(s.hash, s.collateral, s.debt, node, c, d)))
        else:
            node = keccak256(concat(x"01", abi_encode(node, c, d, s.hash, s.collateral, s.debt)))
        c += s.collateral
        d += s.debt
    return node, c, d


@external
@pure
def root_of(account: address, collateral: uint256, debt: uint256,
            siblings: DynArray[Sibling, MAX_DEPTH]) -> (bytes32, uint256, uint256):
    """
    @notice The root hash and (collateral, debt) sums the leaf and siblings lead to.
    """
    return self._fold(account, collateral, debt, siblings)


@external
@pure
def verify(account: address, collateral: uint256, debt: uint256,
           siblings: DynArray[Sibling, MAX_DEPTH], root: bytes32, total_collateral: uint256,
           total_debt: uint256) -> bool:
    """
    @notice True when the proof reaches the published root and totals.
    """
    node: bytes32 = empty(bytes32)
    c: uint256 = 0
    d: uint256 = 0
    node, c, d = self._fold(account, collateral, debt, siblings)
    return node == root and c == total_collateral and d == total_debt

"""Uniswap v2 pairs (and forks: Sushiswap, the devnet AMM)."""

from contagion.protocols.spec import event

PROTOCOL = "uniswap_v2"

SWAP = event(PROTOCOL,
             "Swap(address indexed sender, uint256 amount0In, uint256 amount1In, "
             "uint256 amount0Out, uint256 amount1Out, address indexed to)",
             "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822")
SYNC = event(PROTOCOL, "Sync(uint112 reserve0, uint112 reserve1)",
             "0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1")
MINT = event(PROTOCOL, "Mint(address indexed sender, uint256 amount0, uint256 amount1)",
             "0x4c209b5fc8ad50758f13e2e1088ba56a560dff690a1c6fef26394f4c03821c4f")
BURN = event(PROTOCOL,
             "Burn(address indexed sender, uint256 amount0, uint256 amount1, address indexed to)",
             "0xdccd412f0b1252819cb1fd330b93224ca42612892bb3f4f789976e6d81936496")

EVENTS = (SWAP, SYNC, MINT, BURN)

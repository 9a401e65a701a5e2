# pragma version 0.4.3
# Bench-only: emits ERC-20 Transfer logs in bulk, so the ingestion benchmark has a range with
# hundreds of thousands of logs to read. Not part of the devnet ecosystem.

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256


@external
def burst(count: uint256, seed: uint256):
    for i: uint256 in range(count, bound=4096):
        log Transfer(sender=msg.sender, receiver=self, value=seed + i)

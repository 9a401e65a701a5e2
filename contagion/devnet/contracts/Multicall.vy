# pragma version ~=0.4.3
"""
@title Read-only Multicall3
@notice `aggregate3` with Multicall3's exact ABI, so the reader that batches health checks on the
        devnet works unchanged against Multicall3 (0xcA11bde05977b3631167028862bE2a173976CA11)
        on mainnet and the L2s. A call with allowFailure returns success=False instead of
        reverting the batch. Only the read-only entry point is implemented.
"""

struct Call3:
    target: address
    allowFailure: bool
    callData: Bytes[260]

struct Result:
    success: bool
    returnData: Bytes[320]


@view
@external
def aggregate3(calls: DynArray[Call3, 2048]) -> DynArray[Result, 2048]:
    out: DynArray[Result, 2048] = []
    for c: Call3 in calls:
        ok: bool = False
        data: Bytes[320] = b""
        ok, data = raw_call(c.target, c.callData, max_outsize=320, is_static_call=True,
                            revert_on_failure=False)
        assert ok or c.allowFailure, "Multicall3: call failed"
        out.append(Result(success=ok, returnData=data))
    return out

# pragma version ~=0.4.3
"""
@title Read-only multicall
@notice Many static calls in one eth_call, as liquidation bots batch their health checks.
        A failing call returns success=False instead of reverting the batch.
"""

struct Call:
    target: address
    callData: Bytes[260]

struct Result:
    success: bool
    returnData: Bytes[320]


@view
@external
def aggregate(calls: DynArray[Call, 2048]) -> DynArray[Result, 2048]:
    out: DynArray[Result, 2048] = []
    for c: Call in calls:
        ok: bool = False
        data: Bytes[320] = b""
        ok, data = raw_call(c.target, c.callData, max_outsize=320, is_static_call=True,
                            revert_on_failure=False)
        out.append(Result(success=ok, returnData=data))
    return out

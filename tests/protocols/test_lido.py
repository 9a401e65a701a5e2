"""A real Lido oracle report (Holesky testnet stETH, block 1,934,791), as Lido's own SDK
decoded it in lido-ethereum-sdk's LidoPulse README: our decoder gives the same fields, and the
share rate is the post-report total ether over total shares."""

from __future__ import annotations

import json
from pathlib import Path

from contagion.logfile import read_log_file
from contagion.protocols.canonical import canonical_tables, decoded_frame
from contagion.protocols.decode import decode_logs
from contagion.registry import Feed, Registry, Token

HOLESKY = 17000
STETH = "0x3f1c547b21f65e10480de3ad8e19faac46c95034"
LOG = {
    "address": STETH,
    "topics": ["0xff08c3ef606d198e316ef5b822193c489965899eb4e3c248cea1a4626c3eda50",
               "0x0000000000000000000000000000000000000000000000000000000066957cb4"],
    "data": "0x" + "".join([
        "0000000000000000000000000000000000000000000000000000000000001200",
        "00000000000000000000000000000000000000000000e4866ab1ef0fa0ba1b91",
        "00000000000000000000000000000000000000000000e77e477e6cbd9ce5f90f",
        "00000000000000000000000000000000000000000000e4866e4c7c2d1e2e317c",
        "00000000000000000000000000000000000000000000e77e6c1fc07dee9674aa",
        "000000000000000000000000000000000000000000000000039db5028fe06034"]),
    "blockNumber": hex(1_934_791),
    "blockHash": "0x61ea6638b24ef3b0215556e67bb847e44f52c97e9f24b898452b3b6c426ee82e",
    "transactionHash": "0x826b3e20a499dfb655828829ba08cab037b81873237397502159ea41f9186246",
    "transactionIndex": hex(16), "logIndex": hex(43), "removed": False,
}
# the SDK's decoded args
SDK = {"report_timestamp": 1721072820, "time_elapsed": 4608,
       "pre_total_shares": 1079179109989045486885777,
       "pre_total_ether": 1093196098970760843229455,
       "post_total_shares": 1079179369664131812438396,
       "post_total_ether": 1093198738453702928397482,
       "shares_minted_as_fees": 260563376065765428}


def test_a_real_token_rebased_decodes_as_lido_decodes_it(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps([LOG]))
    logs, _ = read_log_file(path, chain_id=HOLESKY)
    decoded = decode_logs(logs)
    decoded.check()
    [row] = decoded_frame(decoded.tables["lido__token_rebased"]).to_dicts()
    assert {k: int(row[k]) for k in SDK} == SDK
    assert (row["contract_address"], row["block_number"], row["log_index"]) == (
        STETH, 1_934_791, 43)

    registry = Registry(
        network="holesky", chain_id=HOLESKY,
        tokens=[Token(symbol="stETH", address=STETH, decimals=18, kind="lst"),
                Token(symbol="wstETH", address="0x" + "57" * 20, decimals=18, kind="lst")],
        feeds=[Feed(id="RATE", address=STETH, decimals=18, protocol="lido", base="wstETH",
                    quote="stETH")],
        venues=[])
    [price] = canonical_tables(decode_logs(logs, registry=registry).tables,
                               registry)["prices"].to_pylist()
    rate = 10**18 * SDK["post_total_ether"] // SDK["post_total_shares"]
    assert (int(price["answer_raw"]), price["source"], price["quote"]) == (rate, "RATE", STETH)

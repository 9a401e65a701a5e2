"""The default crisis scenario on a fresh devnet, timed against its budget.

The devnet must replay the default crisis (lst-depeg-cascade: >= 200 accounts, >= 2,000 blocks,
>= 20,000 transactions) in under three minutes on this machine. That is a speed target, so it
is measured here, not asserted in a test (tests/devnet checks the run's size and harm). The
node and the deployment are not timed: the scenario's own `seconds` is.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from contagion.devnet.deploy import deploy_ecosystem
from contagion.devnet.node import free_port, start_node, stop_node
from contagion.devnet.runner import run_scenario
from contagion.devnet.scenario import load_scenario

SCENARIO = "lst-depeg-cascade"
BUDGET_SECONDS = 180.0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="contagion-bench-scenario-") as scratch:
        data_dir = Path(scratch)
        info = start_node(data_dir, free_port(), attached=True)
        try:
            deploy_ecosystem(info.url, data_dir)
            spec, path = load_scenario(SCENARIO)
            summary = run_scenario(spec, path, info.url, data_dir).summary
        finally:
            stop_node(data_dir)
    own = summary.transactions - summary.setup_transactions
    print(f"scenario {SCENARIO}: {summary.accounts} accounts, {summary.blocks:,} blocks, "
          f"{own:,} transactions after {summary.setup_transactions:,} of setup, "
          f"{summary.reverted:,} reverted")
    print(f"scenario time: {summary.seconds:.1f} s, {summary.tx_per_second:,.0f} tx/s · "
          f"budget {BUDGET_SECONDS:.0f} s: {BUDGET_SECONDS / summary.seconds:.2f}x under it "
          f"(target >= 1x)")


if __name__ == "__main__":
    main()

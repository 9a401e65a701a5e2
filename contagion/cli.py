"""The `contagion` command."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from contagion.devnet.node import NodeError, NodeInfo, node_status, start_node, stop_node
from contagion.devnet.scenario import ScenarioError, load_scenario
from contagion.registry import RegistryError, load_registry

if TYPE_CHECKING:
    from contagion.devnet.runner import RunSummary

app = typer.Typer(help="Systemic-risk pipeline for DeFi.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
devnet_app = typer.Typer(help="The embedded devnet: a local anvil node with the DeFi world.",
                         no_args_is_help=True)
scenario_app = typer.Typer(help="Scenarios that drive the devnet.", no_args_is_help=True)
registry_app = typer.Typer(help="Network registries (venues, tokens, feeds).",
                           no_args_is_help=True)
app.add_typer(devnet_app, name="devnet")
app.add_typer(scenario_app, name="scenario")
app.add_typer(registry_app, name="registry")
console = Console()
err = Console(stderr=True)

DATA_DIR = typer.Option(Path("data"), "--data-dir", help="Where the node, registry and runs live.")


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


@devnet_app.command("up")
def devnet_up(port: int = typer.Option(8545, help="Port on 127.0.0.1."),
              data_dir: Path = DATA_DIR) -> None:
    """Start anvil, deploy the ecosystem and write the registry."""
    from contagion.devnet.deploy import deploy_ecosystem

    try:
        info = start_node(data_dir, port)
    except NodeError as exc:
        raise _fail(str(exc)) from None
    try:
        with console.status("deploying the ecosystem…"):
            registry = deploy_ecosystem(info.url, data_dir)
    except Exception as exc:
        stop_node(data_dir)
        raise _fail(f"deployment failed, node stopped: {exc}") from exc
    console.print(f"devnet up: [bold]{info.url}[/] (chain id {info.chain_id}, pid {info.pid})")
    console.print(f"registry: {data_dir / 'registry.yaml'} — {len(registry.venues)} venues, "
                  f"{len(registry.tokens)} tokens, {len(registry.feeds)} feeds")
    console.print(info.url)


@devnet_app.command("down")
def devnet_down(data_dir: Path = DATA_DIR) -> None:
    """Stop the node recorded in the data dir."""
    if stop_node(data_dir):
        console.print(f"devnet in {data_dir} stopped")
    else:
        console.print(f"no running devnet recorded in {data_dir}")


@devnet_app.command("status")
def devnet_status(data_dir: Path = DATA_DIR) -> None:
    """Is the node up, where, at which block."""
    status = node_status(data_dir)
    for key, value in status.items():
        console.print(f"{key}: {value}")
    if not status.get("running"):
        raise typer.Exit(code=1)


@scenario_app.command("run")
def scenario_run(scenario: str = typer.Argument(..., help="Bundled name or YAML file."),
                 rpc: str | None = typer.Option(None, "--rpc", help="Node URL (default: the "
                                                "data dir's node)."),
                 data_dir: Path = DATA_DIR) -> None:
    """Run a scenario block by block against the node whose registry is in the data dir."""
    from contagion.devnet.runner import run_scenario

    try:
        spec, path = load_scenario(scenario)
        registry_path = data_dir / "registry.yaml"
        if not registry_path.exists():
            raise _fail(f"no registry at {registry_path}: start the devnet first "
                        f"(`contagion devnet up --data-dir {data_dir}`)")
        if rpc is None:
            info = NodeInfo.load(data_dir)
            if info is None:
                raise _fail(f"no node recorded in {data_dir}; pass --rpc or run "
                            "`contagion devnet up`")
            rpc = info.url
        result = run_scenario(spec, path, rpc, data_dir, progress=True)
    except (ScenarioError, RegistryError, NodeError) as exc:
        raise _fail(str(exc)) from None
    print_summary(result.summary)
    console.print(f"manifest: {result.manifest_path}")


@scenario_app.command("list")
def scenario_list() -> None:
    """The bundled scenarios."""
    from contagion.devnet.scenario import BUNDLED_SCENARIOS

    for path in sorted(BUNDLED_SCENARIOS.glob("*.yaml")):
        spec, _ = load_scenario(path)
        console.print(f"[bold]{spec.name}[/]: {spec.description}")


@scenario_app.command("check")
def scenario_check(scenario: str) -> None:
    """Validate a scenario file without running it."""
    try:
        spec, path = load_scenario(scenario)
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{path}: ok — {spec.blocks} blocks, {spec.accounts.total} accounts, "
                  f"{len(spec.shocks)} shocks")


@registry_app.command("show")
def registry_show(network: str = typer.Argument(..., help="Bundled network or registry file.")
                  ) -> None:
    """Print a registry's venues and tokens."""
    try:
        registry = load_registry(network)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"{registry.network} (chain {registry.chain_id})")
    for col in ("venue", "protocol", "kind", "entry contract", "markets"):
        table.add_column(col)
    for v in registry.venues:
        table.add_row(v.id, v.protocol, v.kind, next(iter(v.contracts.values())),
                      str(len(v.markets)))
    console.print(table)
    console.print(f"{len(registry.tokens)} tokens, {len(registry.feeds)} feeds, "
                  f"{len(registry.claims)} issued claims")


def print_summary(summary: RunSummary) -> None:
    table = Table(title=f"scenario {summary.scenario} (seed {summary.seed})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [("accounts", f"{summary.accounts:,}"),
            ("blocks", f"{summary.blocks:,} (+{summary.setup_blocks} setup), "
                       f"{summary.first_block}–{summary.last_block}"),
            ("transactions", f"{summary.transactions:,} ({summary.setup_transactions:,} setup)"),
            ("reverted", f"{summary.reverted:,}"),
            ("seconds", f"{summary.seconds:,.1f}"),
            ("transactions per second", f"{summary.tx_per_second:,.1f}")]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    harm = Table(title="harm on chain (from events)")
    for col in ("venue", "liquidations", "bad-debt events", "bad debt (USD)"):
        harm.add_column(col, justify="right" if col != "venue" else "left")
    for venue, row in summary.venues.items():
        harm.add_row(venue, f"{row.liquidations:,}", f"{row.bad_debt_events:,}",
                     f"{row.bad_debt_usd:,.0f}")
    console.print(harm)


@app.command("demo")
def demo(scenario: str = typer.Option("lst-depeg-cascade", help="Scenario to run."),
         port: int = typer.Option(8545, help="Port on 127.0.0.1."),
         keep: bool = typer.Option(False, help="Leave the node running afterwards."),
         data_dir: Path | None = typer.Option(None, "--data-dir",
                                              help="Default: a fresh temporary folder.")) -> None:
    """The main job end to end on the embedded devnet: node up, deploy, crisis scenario,
    summary."""
    from contagion.devnet.deploy import deploy_ecosystem
    from contagion.devnet.runner import run_scenario

    workdir = data_dir or Path(tempfile.mkdtemp(prefix="contagion-demo-"))
    try:
        spec, path = load_scenario(scenario)
        info = start_node(workdir, port)
    except (ScenarioError, NodeError) as exc:
        raise _fail(str(exc)) from None
    try:
        with console.status("deploying the ecosystem…"):
            deploy_ecosystem(info.url, workdir)
        result = run_scenario(spec, path, info.url, workdir, progress=True)
        print_summary(result.summary)
        if keep or data_dir is not None:
            console.print(f"manifest: {result.manifest_path}")
            console.print_json(json.dumps({"rpc_url": info.url, "data_dir": str(workdir)}))
        else:
            console.print("the devnet and its data were temporary; pass --keep or --data-dir "
                          "to look at them afterwards")
    finally:
        if not keep:
            stop_node(workdir)
            if data_dir is None:
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    app()

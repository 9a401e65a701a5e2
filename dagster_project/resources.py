"""Resources: the chain (endpoint, registry, indexing settings) and the lake root.

Every field defaults from an environment variable, so `dagster dev -w workspace.yaml` points at
the devnet in ./data without configuration, and a deployment switches chain by environment."""


import os
from pathlib import Path

import dagster as dg

from contagion.chain.rpc import RpcClient
from contagion.devnet.node import NodeInfo
from contagion.lake import Lake
from contagion.registry import Registry, load_registry


def data_dir() -> Path:
    return Path(os.environ.get("CONTAGION_DATA_DIR", "data"))


def _default_rpc() -> str:
    if "CONTAGION_RPC_URL" in os.environ:
        return os.environ["CONTAGION_RPC_URL"]
    info = NodeInfo.load(data_dir())
    return info.url if info is not None else "http://127.0.0.1:8545"


class ChainResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """An EVM JSON-RPC endpoint and the registry describing the network behind it."""

    rpc_url: str = _default_rpc()
    registry: str = os.environ.get("CONTAGION_REGISTRY", str(data_dir() / "registry.yaml"))
    confirmations: int = int(os.environ.get("CONTAGION_CONFIRMATIONS", "0"))
    reorg_window: int = int(os.environ.get("CONTAGION_REORG_WINDOW", "128"))
    partition_width: int = int(os.environ.get("CONTAGION_PARTITION_WIDTH", "1000"))
    max_in_flight: int = int(os.environ.get("CONTAGION_MAX_IN_FLIGHT", "4"))
    chunk_blocks: int = int(os.environ.get("CONTAGION_CHUNK_BLOCKS", "2000"))

    def client(self) -> RpcClient:
        return RpcClient(self.rpc_url, max_in_flight=self.max_in_flight)

    def load_registry(self) -> Registry:
        return load_registry(self.registry)


class LakeResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The Parquet lake's root: a folder here, an object-store URL in production."""

    root: str = os.environ.get("CONTAGION_LAKE", str(data_dir() / "lake"))

    def lake(self) -> Lake:
        return Lake(self.root)


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Settings of the analysts' database checks."""

    max_price_age_seconds: int = int(os.environ.get("CONTAGION_MAX_PRICE_AGE", "3600"))
    truth_sample: int = int(os.environ.get("CONTAGION_TRUTH_SAMPLE", "25"))  # accounts per venue


class FeedResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where signed documents go and how long they are good for. The key is never
    configuration: it comes from CONTAGION_FEED_KEY or CONTAGION_FEED_KEYSTORE (docs/feed.md)."""

    feed_dir: str = os.environ.get("CONTAGION_FEED_DIR", str(data_dir() / "feed"))
    validity_seconds: int = int(os.environ.get("CONTAGION_FEED_VALIDITY", "3600"))
    max_data_age_seconds: int = int(os.environ.get("CONTAGION_FEED_MAX_AGE", "3600"))


class ReportResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the health reports go: one file per run under reports/, the newest also as
    report.html beside them."""

    report_dir: str = os.environ.get("CONTAGION_REPORT_DIR", str(data_dir()))


def database_path() -> str:
    return os.environ.get("CONTAGION_DB", str(data_dir() / "contagion.duckdb"))

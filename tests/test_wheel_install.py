"""What docker/Dockerfile and docker/compose.yml do, without a Docker engine: build the wheel, install it
with the postgres extra in a fresh venv (nothing of the checkout on its path), and run the image's command,
`spsp-pull serve` (which migrates the database at start), against its own PostgreSQL database with the
compose file's settings; then create a pointer and pull from the pointer as printed, with the installed CLI.

The install takes its dependencies from the package index (PyPI, or pip's configured one), time-bounded."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from harness.server_process import ServerProcess
from tests.conftest import POSTGRES_URL

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "sk_wheel_admin_key"
IMAGE_SOURCES = ("pyproject.toml", "README.md", "spsp_pull", "stream")  # docker/Dockerfile's COPY lines
INSTALL_TIMEOUT = 480  # seconds for building the wheel and for installing it, each


def run(*command: str | Path, cwd: Path, timeout: float = 120) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPSP_", "VIRTUAL_ENV", "PYTHON"))}
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A PostgreSQL database of its own, empty (the server migrates it), dropped afterwards."""
    if "postgres" not in os.environ.get("SPSP_TEST_BACKENDS", "sqlite,postgres").split(","):
        pytest.skip("SPSP_TEST_BACKENDS leaves PostgreSQL out")
    name = "wheel_" + secrets.token_hex(6)
    admin_dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://", 1)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def install_wheel(tmp_path: Path) -> Path:
    """The wheel built from a fresh copy of what the Dockerfile copies (a build directory left in the checkout
    could carry modules since removed), installed with the postgres extra in a new venv; its bin/."""
    source = tmp_path / "source"
    source.mkdir()
    for name in IMAGE_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        source,
        "--no-deps",
        "-w",
        wheels,
        cwd=tmp_path,
        timeout=INSTALL_TIMEOUT,
    )
    [wheel] = wheels.glob("spsp_pull-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(
        venv / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--quiet",
        f"{wheel}[postgres]",
        cwd=tmp_path,
        timeout=INSTALL_TIMEOUT,
    )
    where = run(venv / "bin" / "python", "-c", "import spsp_pull; print(spsp_pull.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(venv), where  # the installed package, not the checkout
    return venv / "bin"


async def cli(bin_dir: Path, *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPSP_", "VIRTUAL_ENV", "PYTHON"))}
    env["SPSP_API_KEY"] = ADMIN
    process = await asyncio.create_subprocess_exec(
        str(bin_dir / "spsp-pull"),
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, f"spsp-pull {' '.join(args)} exited {process.returncode}:\n{err.decode()}"
    return out.decode()


async def test_the_wheel_runs_what_compose_runs_on_postgresql(tmp_path: Path, database: str) -> None:
    bin_dir = await asyncio.to_thread(install_wheel, tmp_path)
    server = ServerProcess(
        tmp_path / "data",
        embedded_btp=True,
        command=[str(bin_dir / "spsp-pull"), "serve"],
        cwd=tmp_path,
        ready_timeout=60,
    )
    # docker/compose.yml's server environment (the image sets the data directory and binds).
    server.extra_env = {
        "SPSP_DATABASE_URL": database,
        "SPSP_AUTH_TOKEN": ADMIN,
        "SPSP_HOST": f"localhost:{server.port}",
        "SPSP_BTP_PORT": str(server.btp_port),
        "SPSP_JWT_SECRET": "",
        "SPSP_BIND": "127.0.0.1",
        "SPSP_BTP_BIND": "127.0.0.1",
    }
    async with server:
        connection = await asyncpg.connect(database.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            assert await connection.fetchval("SELECT version_num FROM alembic_version")  # migrated at start
        finally:
            await connection.close()
        pointer = (
            await cli(
                bin_dir,
                "create",
                "--server",
                server.url,
                "--amount",
                "2500",
                "--asset-code",
                "XRP",
                "--asset-scale",
                "9",
                "--interval",
                "P1D",
                "--cycles",
                "30",
                "--output",
                "pointer",
                cwd=tmp_path,
            )
        ).strip()
        assert pointer.startswith(f"$localhost:{server.port}/")
        btp = f"btp+ws://wheel:wheel-token@127.0.0.1:{server.btp_port}"
        pulled = await cli(
            bin_dir, "pull", pointer, "--amount", "1000", "--btp", btp, "--quiet", cwd=tmp_path
        )
        assert pulled.strip() == "received 1000 of 1000 (complete)"
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
            assert "spsp_pointers_created_total 1.0" in await response.text()

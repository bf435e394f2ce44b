"""Every failing command ends with one line on stderr and a documented exit status, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.server_process import SPSP_PULL, ServerProcess, create_pointer, free_port, run_cli
from spsp_pull.cli import main as cli_main
from spsp_pull.cli_errors import ExitStatus

ADMIN = "cli-errors-admin"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    async with ServerProcess(tmp_path / "server", env={"SPSP_AUTH_TOKEN": ADMIN}, embedded_btp=True) as s:
        yield s


def btp(server: ServerProcess, user: str = "payee", token: str = "") -> str:
    return f"btp+ws://{user}:{token or 'secret-' + user}@127.0.0.1:{server.btp_port}"


def client_env(server: ServerProcess | None = None, key: str = ADMIN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPSP_")}
    if server is not None:
        env |= {"SPSP_SERVER": server.url, "SPSP_API_KEY": key}
    return env


def one_line(err: str) -> str:
    """The failure as the user sees it: exactly one line, starting `spsp-pull: `, no traceback."""
    assert "Traceback" not in err, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("spsp-pull: "), err
    assert "{'" not in lines[0], err  # never a Python dict repr
    return lines[0]


async def test_query_of_a_server_that_is_down() -> None:
    down = f"http://127.0.0.1:{free_port()}/some-token"
    status, out, err = await run_cli("query", down, env=client_env())
    assert (status, out) == (ExitStatus.NETWORK, "")
    line = one_line(err)
    assert f"cannot reach {down}" in line and "is the server running" in line


async def test_client_commands_of_a_server_that_is_down() -> None:
    env = client_env() | {"SPSP_SERVER": f"http://127.0.0.1:{free_port()}", "SPSP_API_KEY": "k"}
    status, _, err = await run_cli("show", "some-token", env=env)
    assert status == ExitStatus.NETWORK
    assert "--server / SPSP_SERVER" in one_line(err)


async def test_pull_failures_name_the_problem(server: ServerProcess) -> None:
    token = await create_pointer(server, ADMIN, amount="100")
    pointer = f"{server.url}/{token}"
    env = client_env()

    status, out, err = await run_cli("pull", pointer, "--amount", "10", "--btp", btp(server, "shop", "first"))
    assert status == ExitStatus.OK, err
    # The embedded endpoint keeps the first token of a user name: another token is refused.
    status, out, err = await run_cli(
        "pull", pointer, "--amount", "10", "--btp", btp(server, "shop", "wrong"), env=env
    )
    assert (status, out) == (ExitStatus.REFUSED, "")
    line = one_line(err)
    assert "refused the account" in line and "first token" in line

    status, out, err = await run_cli(
        "pull", pointer, "--amount", "10", "--btp", f"btp+ws://127.0.0.1:{server.btp_port}", env=env
    )
    assert (status, out) == (ExitStatus.USAGE, "")
    assert "has no credentials" in one_line(err)

    nothing = free_port()
    status, out, err = await run_cli(
        "pull", pointer, "--amount", "10", "--btp", f"btp+ws://u:t@127.0.0.1:{nothing}", env=env
    )
    assert (status, out) == (ExitStatus.NETWORK, "")
    line = one_line(err)
    assert f"127.0.0.1:{nothing}" in line and "--btp / SPSP_PAYEE_BTP" in line

    for amount in ("-5", "0", "1.5", "18446744073709551616"):
        status, out, err = await run_cli("pull", pointer, "--amount", amount, "--btp", btp(server), env=env)
        assert (status, out) == (ExitStatus.USAGE, ""), amount
        assert "argument --amount: the amount must be" in one_line(err)


async def test_unknown_pointers_and_problem_bodies(server: ServerProcess) -> None:
    env = client_env(server)
    status, _, err = await run_cli("query", f"{server.url}/no-such-token", env=env)
    assert status == ExitStatus.NOT_FOUND
    assert "404 InvalidPointerError: Pointer does not exist." in one_line(err)

    status, _, err = await run_cli("show", "no-such-token", env=env)
    assert status == ExitStatus.NOT_FOUND
    line = one_line(err)
    assert "404 pointer-not-found: " in line and "account that owns it" in line

    status, _, err = await run_cli("list", env=client_env(server, "not-a-key"))
    assert status == ExitStatus.REFUSED
    assert "401 unauthorized: " in one_line(err) and "SPSP_API_KEY" in one_line(err)

    # An offline pointer the server refuses: problem+json, shown as its code and detail.
    forged = "eyJhbGciOiJIUzI1NiJ9.eyJhbW91bnQiOiIxIn0.c2lnbmF0dXJl"
    status, _, err = await run_cli("query", f"{server.url}/{forged}", env=env)
    assert status == ExitStatus.REFUSED
    assert "401 jwt-" in one_line(err)


async def test_send_to_a_pull_pointer_says_so_at_once(server: ServerProcess) -> None:
    token = await create_pointer(server, ADMIN)
    status, out, err = await run_cli(
        "send", f"{server.url}/{token}", "--amount", "100", "--btp", btp(server), "--timeout", "60"
    )
    assert (status, out) == (ExitStatus.USAGE, "")
    assert "is a pull pointer" in one_line(err)
    status, out, err = await run_cli("pull", f"{server.url}/.well-known/pay", "--btp", btp(server))
    assert (status, out) == (ExitStatus.USAGE, "")
    assert "is not a pull pointer" in one_line(err)


async def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = client_env() | {"SPSP_DATA_DIR": str(tmp_path), "SPSP_BTP_PORT": "off"}
        status, _, err = await run_cli("serve", "--port", str(port), env=env)
    assert status == ExitStatus.NETWORK
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]  # after the server's log lines
    assert line.startswith("spsp-pull: cannot listen: ") and "in use" in line and "--port" in line


async def test_subscribe_with_another_pointers_state_file(tmp_path: Path) -> None:
    state = tmp_path / "sub.json"
    state.write_text(json.dumps({"pointer": "http://127.0.0.1:1/other", "last_cycle": 3, "pulls": []}))
    status, out, err = await run_cli(
        "subscribe", "http://127.0.0.1:1/mine", "--amount", "5", "--state", str(state), env=client_env()
    )
    assert (status, out) == (ExitStatus.USAGE, "")
    assert "belongs to another pointer" in one_line(err)


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--amount", "1.5", "--amount: amount must be an integer"),
        ("--interval", "monthly", "--interval: "),
        ("--cycles", "0", "--cycles: "),
        ("--asset-scale", "300", "--asset-scale: "),
    ],
)
def test_jwt_signs_only_terms_the_server_accepts(
    option: str, value: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    terms = {
        "--amount": "5",
        "--asset-code": "XRP",
        "--asset-scale": "9",
        "--interval": "P1M",
        "--cycles": "3",
    }
    terms[option] = value
    argv = ["jwt", "--secret", "s" * 32, *[part for pair in terms.items() for part in pair]]
    assert cli_main(argv) == ExitStatus.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in one_line(captured.err)


def test_usage_errors_from_argparse_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["pull"]) == ExitStatus.USAGE
    line = one_line(capsys.readouterr().err)
    assert "the following arguments are required: pointer" in line and "--help" in line
    assert cli_main(["query", "not-a-pointer"]) == ExitStatus.USAGE
    assert "neither a $payment.pointer nor an http(s) URL" in one_line(capsys.readouterr().err)


async def test_debug_shows_the_traceback() -> None:
    down = f"http://127.0.0.1:{free_port()}/x"
    status, _, err = await run_cli("--debug", "query", down, env=client_env())
    assert status == ExitStatus.NETWORK
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("spsp-pull: cannot reach")
    status, _, err = await run_cli("query", down, "--debug", env=client_env())
    assert status == ExitStatus.NETWORK and "Traceback" in err


async def test_subscribe_ends_when_the_pointer_is_cancelled(server: ServerProcess, tmp_path: Path) -> None:
    token = await create_pointer(server, ADMIN, amount="100", interval="PT1S", cycles=1000, cap=True)
    state = tmp_path / "sub.json"
    subscriber = await asyncio.create_subprocess_exec(
        *[*SPSP_PULL, "subscribe", f"{server.url}/{token}", "--amount", "100"],
        *["--state", str(state), "--btp", btp(server), "--cycles", "50"],
        env=client_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert subscriber.stderr is not None
    try:
        async with asyncio.timeout(30):
            while True:  # until the subscriber logs its first pull
                logged = await subscriber.stderr.readline()
                assert logged, "the subscriber ended before its first pull"
                if b": pulled 100" in logged:
                    break
        status, _, err = await run_cli("cancel", token, env=client_env(server))
        assert status == ExitStatus.OK, err
        out, rest = await asyncio.wait_for(subscriber.communicate(), 30)
    finally:
        if subscriber.returncode is None:
            subscriber.kill()
            await subscriber.wait()
    assert subscriber.returncode == ExitStatus.PARTIAL, rest.decode()
    assert "subscription over: the agreement is cancelled; pulled in" in out.decode()
    assert "of 50 cycles" in out.decode()


async def test_subscribe_ends_with_the_agreement(server: ServerProcess, tmp_path: Path) -> None:
    token = await create_pointer(server, ADMIN, amount="100", interval="PT2S", cycles=2, cap=True)
    args = ["subscribe", f"{server.url}/{token}", "--amount", "100", "--btp", btp(server)]
    state = tmp_path / "a.json"
    status, out, err = await run_cli(*args, "--state", str(state), "--cycles", "5")
    assert status == ExitStatus.PARTIAL, err
    pulls = len(json.loads(state.read_text())["pulls"])  # 2, or 1 if the CLI started after cycle 1 ended
    assert pulls >= 1
    assert out.strip().endswith(f"the agreement is ended; pulled in {pulls} of 5 cycles")
    # Without --cycles the end of the agreement is the subscription's normal end.
    status, out, err = await run_cli(*args, "--state", str(state))
    assert status == ExitStatus.OK, err
    assert "the agreement is ended; pulled in 0 cycles" in out


def test_jwt_key_files_and_hosts_that_cannot_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    terms = [
        "--amount",
        "5",
        "--asset-code",
        "XRP",
        "--asset-scale",
        "9",
        "--interval",
        "P1M",
        "--cycles",
        "3",
    ]
    missing = tmp_path / "missing.pem"
    assert cli_main(["jwt", *terms, "--private-key", str(missing), "--kid", "k1"]) == ExitStatus.USAGE
    assert f"cannot use {missing}: No such file or directory" in one_line(capsys.readouterr().err)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    assert cli_main(["jwt", *terms, "--private-key", str(garbage), "--kid", "k1"]) == ExitStatus.USAGE
    captured = capsys.readouterr()
    assert captured.out == "" and "unencrypted PEM private key" in one_line(captured.err)
    secret = ["--secret", "s" * 32]
    assert cli_main(["jwt", *terms, *secret, "--host", "user@pull.example"]) == ExitStatus.USAGE
    captured = capsys.readouterr()
    assert captured.out == "" and "not a payment pointer" in one_line(captured.err)
    assert cli_main(["jwt", *terms, *secret, "--host", "pull.example:8443"]) == ExitStatus.OK
    assert capsys.readouterr().out.startswith("$pull.example:8443/ey")

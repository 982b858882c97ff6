"""The Notify-compatible stub (tests/stubs/notify_stub.py) as a process, and the process
helpers the tests that run real servers and workers share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from triage.devstack import free_port

ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "tests" / "stubs" / "notify_stub.py"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL it if it does not go in time."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the prefork children too
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class Stub:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def control(self, **changes: Any) -> dict[str, Any]:
        answer = httpx.post(f"{self.url}/_control", json=changes, timeout=10)
        answer.raise_for_status()
        return dict(answer.json())

    def sends(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/_sends", timeout=30).json()["sends"])

    def requests(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/_requests", timeout=30).json()["requests"])

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_stats", timeout=10).json())


def start_stub(directory: Path, callback: str | None = None, callback_token: str = "") -> Stub:
    """The Notify-compatible stub in its own process (and process group)."""
    port = free_port()
    log_path = directory / f"stub-{port}.log"
    args = [PYTHON, str(STUB), "--port", str(port), "--db", str(directory / f"stub-{port}.db")]
    if callback:
        args += ["--callback-url", callback, "--callback-token", callback_token]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the stub exited at start:\n{tail(log_path)}")
        try:
            httpx.get(f"{url}/_stats", timeout=1).raise_for_status()
            return Stub(url, process, log_path)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                stop_process(process)
                raise RuntimeError("the stub did not start in 15 s") from None
            time.sleep(0.1)


def stub_settings(stub_url: str, key: str, templates: dict[str, str]) -> Any:
    """Production's choice of notifier (a real provider: GOV.UK Notify's client) pointed at
    a local stub, with the test's own key and template ids, and no send rate limit."""
    import dataclasses
    import json

    from triage.settings import get_settings

    return dataclasses.replace(
        get_settings(),
        notifier="notify",
        notify_api_key=key,
        notify_base_url=stub_url,
        notify_template_ids=json.dumps(templates),
        notify_per_minute=0,
    )

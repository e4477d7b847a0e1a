"""`saisine demo` (the README's first command) runs end to end: registry, gateway, SOAP, receipts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port


@pytest.mark.integration
def test_demo_registers_every_sample_and_rejects_the_invalid_one(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    command = [
        sys.executable,
        "-m",
        "gateway",
        "demo",
        "--port",
        str(free_port()),
        "--registry-port",
        str(free_port()),
        "--workdir",
        str(workdir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "16/16 registered by the court registry" in output
    assert "NATINF_UNKNOWN" in output
    assert "TJ69264-2026-" in output  # a numéro parquet in the registry's documented format
    assert (workdir / "registry.db").exists() and (workdir / "saisine.db").exists()

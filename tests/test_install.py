"""scripts/install.sh as a machine outside this environment sees it, and its choice of profile.

The +cpu torch is not on PyPI: an ordinary machine finds it only on PyTorch's CPU index. Here a
real PEP 503 index on 127.0.0.1 stands in for it (serving the locked wheel with its sha256), and
pip's and uv's own configuration and wheel folders are switched off, so the only way to torch is
the index install.sh is pointed at (MIS_EVAL_TORCH_INDEX). `--torch-only` runs the same code path
as a full install for the pins that come from that index (the rest is PyPI, as for any package).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


def _local_torch_wheel() -> Path:
    for folder in os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split():
        if (Path(folder) / WHEEL).is_file():
            return Path(folder) / WHEEL
    pytest.skip(f"no local copy of {WHEEL} to serve (this environment keeps it in /opt/wheels)")


class _Index:
    """A PEP 503 'simple' index over a folder, recording every path it is asked for."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        seen = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                seen.append(self.path)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Index:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def torch_index(tmp_path: Path) -> Iterator[_Index]:
    wheel = _local_torch_wheel()
    (tmp_path / "index" / "files").mkdir(parents=True)
    (tmp_path / "index" / "files" / WHEEL).symlink_to(wheel)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    page = tmp_path / "index" / "simple" / "torch" / "index.html"
    page.parent.mkdir(parents=True)
    href = f"/files/{WHEEL.replace('+', '%2B')}#sha256={digest}"
    page.write_text(f'<!DOCTYPE html><html><body><a href="{href}">{WHEEL}</a></body></html>\n')
    with _Index(tmp_path / "index") as index:
        yield index


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No pip or uv configuration, no wheel folder, empty caches: an ordinary machine."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "MIS_EVAL_", "VIRTUAL_ENV"))
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_CACHE_DIR=str(tmp_path / "pip-cache"),
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        MIS_EVAL_VENV=str(tmp_path / "venv"),
    )
    tools = os.environ.get("MIS_EVAL_TOOLS")  # the pinned uv, bootstrapped by the install already
    if tools:
        env["MIS_EVAL_TOOLS"] = tools
    env.update(extra)
    return env


def _install(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "scripts/install.sh", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _installed_torch(venv: Path) -> list[str]:
    return sorted(p.name for p in venv.glob("lib/python3*/site-packages/torch-*.dist-info"))


def _served_the_wheel(index: _Index) -> bool:
    return any(p.startswith("/files/torch-2.13.0") for p in index.requests)


@pytest.mark.slow
def test_uv_gets_the_cpu_torch_from_the_torch_index_alone(tmp_path: Path, torch_index: _Index) -> None:
    env = _clean_env(tmp_path, MIS_EVAL_TORCH_INDEX=torch_index.url, MIS_EVAL_INSTALLER="uv")
    try:
        done = _install(env, "cpu", "--torch-only")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "installer: uv 0.13.9" in done.stdout
        assert f"torch==2.13.0+cpu from {torch_index.url}" in done.stdout
        assert "/simple/torch/" in torch_index.requests and _served_the_wheel(torch_index)
        assert _installed_torch(tmp_path / "venv") == ["torch-2.13.0+cpu.dist-info"]
    finally:
        shutil.rmtree(tmp_path / "venv", ignore_errors=True)
        shutil.rmtree(tmp_path / "uv-cache", ignore_errors=True)


def test_where_uv_cannot_be_installed_the_install_says_so_and_uses_pip(tmp_path: Path) -> None:
    """No uv yet (empty tool folder) and an index without it: pip, and the reason, printed."""
    with _Index(tmp_path) as empty:
        env = _clean_env(tmp_path, MIS_EVAL_TOOLS=str(tmp_path / "tools"), PIP_INDEX_URL=empty.url)
        done = _install(env, "cpu", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installer: pip: uv from locks/uv.txt cannot be installed or run here" in done.stdout
    assert "/simple/uv/" in empty.requests
    assert not (tmp_path / "venv").exists() and not list((tmp_path / "tools").iterdir())


@pytest.mark.slow
def test_a_wheel_folder_holding_the_cpu_torch_spares_the_index(tmp_path: Path, torch_index: _Index) -> None:
    """As here (PIP_FIND_LINKS=/opt/wheels): the index, unreachable here, is never asked.

    uv's own cache stays (the wheel folder's torch is in it after any install here).
    """
    env = _clean_env(
        tmp_path,
        MIS_EVAL_TORCH_INDEX=torch_index.url,
        MIS_EVAL_INSTALLER="uv",
        PIP_FIND_LINKS=str(_local_torch_wheel().parent),
    )
    env.pop("UV_CACHE_DIR")
    try:
        done = _install(env, "cpu", "--torch-only")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "torch==2.13.0+cpu from the local wheel folder" in done.stdout
        assert torch_index.requests == []
        assert _installed_torch(tmp_path / "venv") == ["torch-2.13.0+cpu.dist-info"]
    finally:
        shutil.rmtree(tmp_path / "venv", ignore_errors=True)


def _fake_nvidia_smi(folder: Path, output: str, status: int) -> None:
    """The GPU is the outside world here: a stand-in for the driver's `nvidia-smi -L`."""
    folder.mkdir(exist_ok=True)
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\nexit {status}\n")
    tool.chmod(0o755)


@pytest.mark.parametrize(
    ("smi", "args", "expected"),
    [
        (("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)", 0), [], "profile cuda (nvidia-smi lists 1 GPU(s)"),
        (("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)", 0), ["cpu"], "profile cpu (asked for)"),
        (
            ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver", 9),
            [],
            "profile cpu (no NVIDIA GPU visible: nvidia-smi -L lists none)",
        ),
        (None, [], "profile cpu (no NVIDIA GPU visible: nvidia-smi not found)"),
        (None, ["cuda"], "profile cuda (asked for)"),
        (None, ["vllm-cpu"], "profile vllm-cpu (asked for)"),
    ],
)
def test_the_profile_follows_a_visible_gpu_unless_one_is_named(
    tmp_path: Path, smi: tuple[str, int] | None, args: list[str], expected: str
) -> None:
    path = os.environ["PATH"]
    if smi is not None:
        _fake_nvidia_smi(tmp_path / "bin", *smi)
        path = f"{tmp_path / 'bin'}:{path}"
    elif shutil.which("nvidia-smi"):
        pytest.skip("this machine has a real nvidia-smi")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIS_EVAL_")}
    done = subprocess.run(
        ["bash", "scripts/install.sh", *args, "--dry-run"],
        cwd=REPO,
        env={**env, "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    first = done.stdout.splitlines()[0]
    assert first.startswith(expected), done.stdout
    profile = expected.split()[1]
    venv = ".venv-vllm" if profile == "vllm-cpu" else ".venv"
    assert first.endswith(f"): {venv} from locks/{profile}.txt"), first

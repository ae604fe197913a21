"""W&B decisions that need no W&B run: offline without an account, how long an unreachable server
may take, and which W&B run a job continues. tests/test_train.py reads what W&B runs wrote."""

import socket
import time
from pathlib import Path

import pytest

from conftest import make_cfg
from dlstudies.config.wandb_login import wandb_offline
from dlstudies.loggers import answers, build_loggers


def test_offline_without_an_account_online_with_a_netrc_entry_for_the_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert wandb_offline()  # no netrc file
    netrc.write_text("machine example.org login user password secret\n")
    assert wandb_offline()  # no entry for W&B
    netrc.write_text(f"machine api.wandb.ai login user password {'a' * 40}\n")
    assert not wandb_offline()
    monkeypatch.setenv("WANDB_BASE_URL", "http://wandb.example.org:8080")
    assert wandb_offline()  # logged in elsewhere, not to this server


def test_a_server_that_never_answers_costs_only_the_timeout() -> None:
    with socket.socket() as silent, socket.socket() as closed:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections, never answers
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        started = time.monotonic()
        assert not answers(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.5)
        assert time.monotonic() - started < 5
        assert not answers(f"http://127.0.0.1:{closed.getsockname()[1]}", timeout_s=30)
        assert time.monotonic() - started < 5


def test_a_job_continues_the_wandb_run_of_its_folder_or_of_the_run_it_resumes(tmp_path: Path) -> None:
    """Found in the folders W&B names after its runs; a new job leaves the id to W&B."""
    cfg = make_cfg(["logger=wandb", "logger.wandb.offline=true"], tmp_path)
    (fresh,) = build_loggers(cfg)
    assert fresh.version is None  # W&B picks an id
    origin = tmp_path / "earlier_run"
    (origin / "wandb" / "offline-run-20260101_120000-abc123").mkdir(parents=True)
    (resumed,) = build_loggers(cfg, resumed_from=origin)
    assert resumed.version == "abc123"
    (Path(cfg.paths.output_dir) / "wandb" / "run-20260102_120000-own456").mkdir(parents=True)
    (rerun,) = build_loggers(cfg, resumed_from=origin)
    assert rerun.version == "own456"  # a re-run sweep job: its own folder's run first

"""Atomic writes: a file is replaced whole or left as it was."""

from pathlib import Path

import pytest

from dlstudies.files import atomic_path, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = write_text(tmp_path / "summary.json", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_complete_write_replaces_the_file_and_makes_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "new" / "summary.json"
    write_text(target, "first")
    write_text(target, "second")
    assert target.read_text() == "second" and [p.name for p in target.parent.iterdir()] == ["summary.json"]

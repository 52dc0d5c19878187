"""``synod gfs`` (issue 13 section 5): up, the file commands, fsck, status
and down against a real cell; bad arguments exit 2; a missing cell exits 1.
Every test kills what its run dir started, whatever happened."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from tests.kv.test_kv_cli import processes_of, synod


@pytest.fixture
def gfs_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "gfs"
    yield d
    left = processes_of(d)
    for p in left:
        p.kill()
    psutil.wait_procs(left, timeout=5)


def test_up_put_ls_append_cat_snapshot_get_rm_fsck_down(gfs_dir: Path, tmp_path: Path) -> None:
    d = ("--dir", str(gfs_dir))
    up = synod("gfs", "up", "--chunkservers", "4", "--chunk-size", "256KiB", *d)
    assert up.exit_code == 0, up.output
    assert "4 chunkservers reported" in up.output
    local = tmp_path / "data.bin"
    local.write_bytes(bytes(range(256)) * 2000)          # 512,000 bytes: two chunks
    assert synod("gfs", "put", str(local), "/in/data.bin", *d).exit_code == 0
    ls = synod("gfs", "ls", "/in", *d)
    assert "data.bin  512,000 bytes  2 chunks" in ls.output, ls.output
    assert "appended at offset 0" in synod("gfs", "append", "/log", "one", *d).output
    assert "appended at offset 4" in synod("gfs", "append", "/log", "two", *d).output
    assert synod("gfs", "cat", "/log", *d).output == "one\ntwo\n"
    assert synod("gfs", "snapshot", "/in", "/snap", *d).exit_code == 0
    got = tmp_path / "got.bin"
    assert synod("gfs", "get", "/snap/data.bin", str(got), *d).exit_code == 0
    assert got.read_bytes() == local.read_bytes()
    assert synod("gfs", "rm", "/in/data.bin", *d).exit_code == 0
    assert "data.bin" not in synod("gfs", "ls", "/in", *d).output
    fsck = synod("gfs", "fsck", "--json", *d)
    assert fsck.exit_code == 0, fsck.output
    report = json.loads(fsck.output)
    assert len(report["servers"]) == 4 and report["under_replicated"] == []
    # MapReduce over the cell: gfs:// inputs and output (issue 13 section 5)
    (tmp_path / "words.txt").write_text("lease chunk lease master\nchunk lease\n")
    assert synod("gfs", "put", str(tmp_path / "words.txt"), "/in/words.txt", *d).exit_code == 0
    mr = synod("mr", "run", "--app", "wc", "--workers", "2", "--reduces", "1", "--gfs-dir", str(gfs_dir),
               "--out", "gfs:///out/wc", "gfs:///in")
    assert mr.exit_code == 0, mr.output
    assert "committed mr-out-0 and _SUCCESS to gfs:///out/wc" in mr.output
    assert "map tasks run beside a replica of their input:" in mr.output
    assert synod("gfs", "cat", "/out/wc/mr-out-0", *d).output.splitlines() == ["chunk 2", "lease 3", "master 1"]
    again = synod("mr", "run", "--app", "wc", "--gfs-dir", str(gfs_dir), "--out", "gfs:///out/wc", "gfs:///in")
    assert again.exit_code == 2 and "--force" in again.output
    mixed = synod("mr", "run", "--app", "wc", "--gfs-dir", str(gfs_dir), "--out", str(tmp_path / "o"), "gfs:///in")
    assert mixed.exit_code == 2 and "one storage per job" in mixed.output
    missing = synod("gfs", "cat", "/nope", *d)
    assert missing.exit_code == 1 and "NOT_FOUND" in missing.output
    down = synod("gfs", "down", *d)
    assert down.exit_code == 0 and "nothing of the cell" in down.output
    assert processes_of(gfs_dir) == []


def test_bad_arguments_and_a_missing_cell(gfs_dir: Path) -> None:
    bad = synod("gfs", "up", "--chunk-size", "lots", "--dir", str(gfs_dir))
    assert bad.exit_code == 2 and "a size like 64MiB" in bad.output
    none = synod("gfs", "ls", "/", "--dir", str(gfs_dir))
    assert none.exit_code == 1 and "no GFS cell" in none.output

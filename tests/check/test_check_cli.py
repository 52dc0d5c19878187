"""``synod check lin`` from the command line, as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_data_dir

SYNOD = [sys.executable, "-m", "synod.cli.main"]


def synod(*args: str, cwd: Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYNOD, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout_s)


def jsonl(path: Path, *events: dict) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def ev(process: int, kind: str, f: str, value: object = None, key: str | None = None) -> dict:
    out: dict = {"process": process, "type": kind, "f": f, "value": value}
    if key is not None:
        out["key"] = key
    return out


STALE_READ = [ev(0, "invoke", "write", 1), ev(0, "ok", "write", 1), ev(1, "invoke", "cas", [1, 2]),
              ev(1, "ok", "cas", [1, 2]), ev(2, "invoke", "read"), ev(2, "ok", "read", 1)]


def test_linearizable_history_exits_0(tmp_path: Path) -> None:
    h = jsonl(tmp_path / "h.jsonl", *STALE_READ[:4], ev(2, "invoke", "read"), ev(2, "ok", "read", 2))
    proc = synod("check", "lin", str(h), "--model", "cas-register", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "linearizable" in proc.stdout
    assert "4 operations" not in proc.stdout and "3 operations" in proc.stdout
    assert not list(tmp_path.glob("*.html"))


def test_illegal_history_exits_1_and_writes_the_failing_window(tmp_path: Path) -> None:
    h = jsonl(tmp_path / "h.jsonl", *STALE_READ)
    proc = synod("check", "lin", str(h), "--model", "cas-register", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "not linearizable" in proc.stdout
    assert "cannot place: process 2 read -> 1 (lines 5-6)" in proc.stdout
    page = tmp_path / "h.jsonl.lin.html"
    assert f"failing window: {page.name}" in proc.stdout
    text = page.read_text()
    assert text.startswith("<!doctype html>")
    assert re.search(r'<g class="op stuck window" data-op="2">', text), "the stuck read is highlighted"
    assert text.count('class="op prefix') == 2, "the write and the cas were linearized"
    for external in ("<script", "<link", "url(", "src="):
        assert external not in text, f"the page must be self-contained ({external})"


def test_html_goes_where_asked(tmp_path: Path) -> None:
    h = jsonl(tmp_path / "h.jsonl", *STALE_READ)
    out = tmp_path / "sub" / "window.html"
    out.parent.mkdir()
    proc = synod("check", "lin", str(h), "--model", "cas-register", "--html", str(out), cwd=tmp_path)
    assert proc.returncode == 1
    assert out.is_file()
    assert str(out) in proc.stdout


def test_timeout_exits_3(tmp_path: Path) -> None:
    writers = 24
    events = [ev(p, "invoke", "write", p) for p in range(writers)] + [ev(p, "ok", "write", p) for p in range(writers)]
    events += [ev(writers, "invoke", "read"), ev(writers, "ok", "read", -1)]
    h = jsonl(tmp_path / "hard.jsonl", *events)
    proc = synod("check", "lin", str(h), "--model", "register", "--timeout", "0.3", cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "unknown: no verdict (--timeout 0.3 s ran out" in proc.stdout


def test_keys_and_formats(tmp_path: Path) -> None:
    h = jsonl(tmp_path / "kv.jsonl", ev(0, "invoke", "put", "a", key="x"), ev(0, "ok", "put", "a", key="x"),
              ev(1, "invoke", "get", key="y"), ev(1, "ok", "get", "", key="y"))
    proc = synod("check", "lin", str(h), "--model", "kv", "--format", "jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 key(s)" in proc.stdout
    edn = tmp_path / "h.edn"
    edn.write_text('{:process 0, :type :invoke, :f :add, :value 1}\n{:process 0, :type :ok, :f :add, :value 1}\n'
                   '{:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value [1]}\n')
    assert synod("check", "lin", str(edn), "--model", "set", cwd=tmp_path).returncode == 0
    log = tmp_path / "h.log"
    log.write_text("INFO  jepsen.util - 0\t:invoke\t:enqueue\t1\nINFO  jepsen.util - 0\t:ok\t:enqueue\t1\n"
                   "INFO  jepsen.util - 1\t:invoke\t:dequeue\tnil\nINFO  jepsen.util - 1\t:ok\t:dequeue\t2\n")
    proc = synod("check", "lin", str(log), "--model", "queue", "--format", "jepsen-log", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    empty = tmp_path / "empty.log"
    empty.write_text("")
    assert synod("check", "lin", str(empty), "--model", "mutex", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("args, message", [
    (["H"], "Missing option '--model'"),
    (["H", "--model", "btree"], "Invalid value for '--model'"),
    (["H", "--model", "kv", "--format", "yaml"], "Invalid value for '--format'"),
    (["H", "--model", "kv", "--timeout", "0"], "--timeout must be a positive number"),
    (["H", "--model", "kv", "--fail-means-mismatch"], "applies to --model cas-register only"),
    (["/no/such/history.jsonl", "--model", "kv"], "/no/such/history.jsonl: cannot read"),
    (["BAD", "--model", "register"], "bad.jsonl:2: bad JSON"),
    (["H", "--model", "register"], "h.jsonl:1: register has no operation 'cas'"),
    (["H", "--model", "register", "--format", "edn"], "h.jsonl:1: bad EDN"),
])
def test_bad_arguments_and_input_give_one_line_and_status_2(tmp_path: Path, args: list[str], message: str) -> None:
    h = jsonl(tmp_path / "h.jsonl", ev(1, "invoke", "cas", [1, 2]), ev(1, "ok", "cas", [1, 2]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ev(0, "invoke", "read")) + "\n{not json\n")
    args = [str(h) if a == "H" else str(bad) if a == "BAD" else a for a in args]
    proc = synod("check", "lin", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert lines[0].startswith("synod check lin: error: ")
    assert not list(tmp_path.glob("*.html"))


def test_porcupine_files_from_the_command_line(tmp_path: Path) -> None:
    d = shared_data_dir() / "porcupine"
    if not d.is_dir():
        pytest.skip(f"Porcupine's test histories not found in {d} (set SYNOD_SHARED_DATA)")
    ok = synod("check", "lin", str(d / "kv" / "c10-ok.txt"), "--model", "kv", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    bad = synod("check", "lin", str(d / "jepsen" / "etcd_000.log"), "--model", "cas-register",
                "--fail-means-mismatch", cwd=tmp_path)
    assert bad.returncode == 1, bad.stderr
    assert (tmp_path / "etcd_000.log.lin.html").is_file()

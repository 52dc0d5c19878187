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


def test_command_choices_are_the_checkers() -> None:
    """check_cmd spells the choices out so that importing it imports no checker; they must stay equal."""
    from synod.check import FORMATS, MODELS
    from synod.cli.check_cmd import FORMAT_NAMES, MODEL_NAMES
    assert MODEL_NAMES == tuple(MODELS)
    assert FORMAT_NAMES == FORMATS


def test_check_lin_imports_only_the_checker(tmp_path: Path) -> None:
    """Start-up: importing the command imports no checker; running it imports no system, simulator or runtime."""
    h = jsonl(tmp_path / "h.jsonl", *STALE_READ[:4])
    code = ("import sys\nimport synod.cli.check_cmd\n"
            "assert not [m for m in sys.modules if m.startswith('synod.check')], 'imported at import time'\n"
            "from synod.cli.main import main\n"
            f"try:\n    main(['check', 'lin', {str(h)!r}, '--model', 'cas-register'])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('synod'))))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.split("\n")[-2].split()
    assert "synod.check.linearizability" in loaded
    extra = [m for m in loaded if not m.startswith(("synod.check", "synod.core", "synod.cli.main",
                                                     "synod.cli.check_cmd")) and m not in ("synod", "synod.cli")]
    assert extra == [], f"check lin needs none of {extra}"
    assert "asyncio" not in proc.stdout


def test_initial_value_for_registers(tmp_path: Path) -> None:
    """Jepsen's cas-register tests start at 0: a cas from 0 is legal only with --initial-value 0."""
    h = jsonl(tmp_path / "h.jsonl", ev(0, "invoke", "cas", [0, 1]), ev(0, "ok", "cas", [0, 1]),
              ev(1, "invoke", "read"), ev(1, "ok", "read", 1))
    assert synod("check", "lin", str(h), "--model", "cas-register", cwd=tmp_path).returncode == 1
    proc = synod("check", "lin", str(h), "--model", "cas-register", "--initial-value", "0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = jsonl(tmp_path / "s.jsonl", ev(1, "invoke", "read"), ev(1, "ok", "read", "x"))
    assert synod("check", "lin", str(s), "--model", "register", "--initial-value", '"x"', cwd=tmp_path).returncode == 0
    assert synod("check", "lin", str(s), "--model", "register", "--initial-value", "nil", cwd=tmp_path).returncode == 1
    proc = synod("check", "lin", str(h), "--model", "cas-register", "--initial-value", "0", "--json", cwd=tmp_path)
    assert json.loads(proc.stdout)["initial_value"] == 0


@pytest.mark.parametrize("args, message", [
    (["--model", "register", "--initial-value", "zero"], "--initial-value must be an integer, a quoted string or nil"),
    (["--model", "register", "--initial-value", "[1]"], "--initial-value must be"),
    (["--model", "kv", "--initial-value", "0"], "--initial-value applies to --model register or cas-register only"),
])
def test_bad_initial_value_gives_one_line_and_status_2(tmp_path: Path, args: list[str], message: str) -> None:
    h = jsonl(tmp_path / "h.jsonl", ev(1, "invoke", "read"), ev(1, "ok", "read", 0))
    proc = synod("check", "lin", str(h), *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("synod check lin: error: ")
    assert message in line


def test_time_going_backwards_is_checked_in_file_order_with_a_warning(tmp_path: Path) -> None:
    events = [dict(ev(0, "invoke", "write", 1), time=50), dict(ev(0, "ok", "write", 1), time=40),
              dict(ev(1, "invoke", "read"), time=10), dict(ev(1, "ok", "read", None), time=20)]
    h = jsonl(tmp_path / "h.jsonl", *events)
    proc = synod("check", "lin", str(h), "--model", "register", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"synod check lin: warning: {h}:2: time goes backwards: 40 after 50"), proc.stderr
    assert "file's order as the real-time order" in proc.stderr
    proc = synod("check", "lin", str(h), "--model", "register", "--json", cwd=tmp_path)
    assert "time goes backwards" in json.loads(proc.stdout)["warnings"][0]


EDN_VECTOR = """; a Jepsen history.edn
[{:process 0, :type :invoke, :f :write, :value 1}
 {:process 0, :type :ok, :f :write, :value 1}

 {:process 1, :type :invoke, :f :cas, :value [1 2]}
 {:process 1, :type :ok, :f :cas, :value [1 2]}
 ; the stale read
 {:process 2, :type :invoke, :f :read, :value nil}
 {:process 2, :type :ok, :f :read, :value 1}]
"""


def test_failing_window_names_real_file_lines_of_an_edn_vector(tmp_path: Path) -> None:
    h = tmp_path / "history.edn"
    h.write_text(EDN_VECTOR)
    proc = synod("check", "lin", str(h), "--model", "cas-register", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cannot place: process 2 read -> 1 (lines 8-9)" in proc.stdout, proc.stdout
    page = (tmp_path / "history.edn.lin.html").read_text()
    assert "<td>lines 8-9</td>" in page
    assert "<td>lines 5-6</td>" in page, "the cas, linearized before it"
    proc = synod("check", "lin", str(h), "--model", "cas-register", "--json", cwd=tmp_path)
    window = json.loads(proc.stdout)["failing_window"]
    assert window["stuck"]["lines"] == [8, 9]
    assert [op["lines"] for op in window["prefix_end"]] == [[2, 3], [5, 6]]


def test_json_output(tmp_path: Path) -> None:
    h = jsonl(tmp_path / "h.jsonl", *STALE_READ)
    proc = synod("check", "lin", str(h), "--model", "cas-register", "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stdout.splitlines()
    out = json.loads(line)
    assert (out["verdict"], out["model"], out["keys"], out["operations"]) == ("illegal", "cas-register", 1, 3)
    assert out["html"] == "h.jsonl.lin.html" and (tmp_path / out["html"]).is_file()
    assert set(out["timing_ms"]) == {"read_ms", "check_ms"}
    window = out["failing_window"]
    assert window["why"].startswith("Process 2's read returned 1, but the value was 2 after the longest")
    assert (window["stuck"]["describe"], window["stuck"]["lines"]) == ("read -> 1", [5, 6])
    assert (window["prefix_length"], window["final_state"]) == (2, 2)
    assert [op["linearized"] for op in window["window"]] == [None]
    ok_h = jsonl(tmp_path / "ok.jsonl", *STALE_READ[:4])
    ok = synod("check", "lin", str(ok_h), "--model", "cas-register", "--json", cwd=tmp_path)
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["failing_window"] is None
    assert json.loads(ok.stdout)["verdict"] == "ok"


def test_failing_window_page_says_why_and_has_a_time_axis_and_whole_labels(tmp_path: Path) -> None:
    """Part 4 of issue 9: one sentence why, a time axis, labels not cut off."""
    long_value = "a-rather-long-value-" * 2
    h = jsonl(tmp_path / "h.jsonl", ev(0, "invoke", "put", long_value, key="k"), ev(0, "ok", "put", long_value, key="k"),
              ev(1, "invoke", "get", key="k"), ev(1, "ok", "get", "3", key="k"))
    proc = synod("check", "lin", str(h), "--model", "kv", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    page = (tmp_path / "h.jsonl.lin.html").read_text()
    why = re.search(r'<p class="why">(.*?)</p>', page)
    assert why is not None
    assert why.group(1).startswith("Process 1&#x27;s get on key k returned &#x27;3&#x27;, but the value was "
                                   "&#x27;a-rather-long-value-a-rather-long-value-&#x27; after"), why.group(1)
    assert "why: Process 1's get on key k returned '3'" in proc.stdout
    assert 'class="axis"' in page and "file line" in page and "real-time order" in page
    assert re.search(r'class="tick">\+\d', page), "ticks give the time since the window's start"
    labels = re.findall(r'<g class="op[^>]*>.*?<text [^>]*>(.*?)</text>', page)
    assert any(lbl.startswith("#1 put ") and long_value in lbl for lbl in labels), labels
    assert not any("\u2026" in lbl for lbl in labels), "no label is cut off"

"""The page: self-contained, data embedded safely; and ``synod trace view``
from the command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.viz._traces import PING, drop, line, model_of, recv, send

from synod.viz import payload, render_html
from synod.viz.constants import DETAIL_CHARS_MAX

SYNOD = [sys.executable, "-m", "synod.cli.main"]
EVIL = "</script><script>alert(1)</script><!--"


def _small_model():
    return model_of(
        line(0.0, "n1", "state", role="leader", term=1),
        send(0.0, "n1", "n2", {"type": "t.Note", "text": EVIL}, corr=1),
        recv(2.0, "n2", "n1", {"type": "t.Note", "text": EVIL}, corr=1),
        send(3.0, "n1", "n2", PING), drop(3.0, "n1", "n2", "loss"),
        line(4.0, "n2", "crash"),
        line(5.0, "c1", "client_op", type="invoke", f="read", value=None),
        line(6.0, "c1", "client_op", type="ok", f="read", value="x" * 5000),
    )


def _embedded(page: str) -> dict:
    m = re.search(r'<script id="trace-data" type="application/json">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_the_page_needs_no_network_and_embeds_data_safely() -> None:
    model = _small_model()
    page = render_html(model, title="a <b>bold</b> title", source="t.jsonl")
    assert re.findall(r"(?:https?|ftp|wss?)://", page) == []
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import", page)
    assert EVIL not in page
    assert page.count("</script>") == 2  # the data block and the viewer
    assert "<title>a &lt;b&gt;bold&lt;/b&gt; title</title>" in page
    data = _embedded(page)
    assert data == json.loads(json.dumps(payload(model, title="a <b>bold</b> title", source="t.jsonl")))
    assert any(EVIL in d for d in data["details"])


def test_payload_columns_and_totals() -> None:
    data = payload(_small_model(), title="t", source="")
    assert data["lanes"] == ["n1", "n2", "c1"]
    assert data["laneGroup"] == [1, 1, 2]
    arrows = data["arrows"]
    assert {len(col) for col in arrows.values()} == {2}
    assert arrows["f"] == [0, 1 | 8]              # delivered; dropped at the sender
    assert data["types"] == ["t.Note", "t.Ping"]
    assert data["stats"] == {"records": 8, "messages": 2, "delivered": 1, "dropped": 1, "in_flight": 0,
                             "dropped_by": {"loss": 1}, "duplicates": 0, "duplicates_delivered": 0,
                             "duplicates_dropped": 0, "orphans": 0}
    assert data["states"][0][:5] == [0, 0.0, 6.0, "leader", "1"]
    assert data["intervals"][0][:5] == [1, 4.0, 6.0, 0, 1]
    assert data["ops"][0][:5] == [2, 0, 5.0, 6.0, "ok"]
    assert max(len(d) for d in data["details"]) <= DETAIL_CHARS_MAX
    assert sum(data["overview"]["sends"]) == 2


def synod(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYNOD, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_trace_view_writes_the_page(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text("\n".join([send(0.0, "a", "b", PING), recv(1.0, "b", "a", PING)]) + "\n")
    proc = synod("trace", "view", "t.jsonl", "--out", "run.html", "--title", "my run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 lanes, 2 trace lines, 1 messages sent (1 delivered, 0 dropped, 0 in flight at the end)" in proc.stdout
    page = (tmp_path / "run.html").read_text()
    assert _embedded(page)["title"] == "my run"


@pytest.mark.parametrize(("content", "message"), [
    (None, "t.jsonl: no such file"),
    (line(0.0, "a", "k") + "\nnot json\n", "t.jsonl:2: not JSON"),
    (line(0.0, "a", "k") + "\n" + line(1.0, "a", "k") + "\n{}\n", "t.jsonl:3: no 't_ms' field"),
])
def test_bad_input_is_one_line_naming_the_line_and_status_2(tmp_path: Path, content: str | None,
                                                            message: str) -> None:
    if content is not None:
        (tmp_path / "t.jsonl").write_text(content)
    proc = synod("trace", "view", "t.jsonl", "--out", "run.html", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("synod trace: error: ")
    assert message in lines[0]
    assert not (tmp_path / "run.html").exists()


def test_the_time_axis_counts_from_zero_for_simulated_runs_and_from_the_start_for_real_ones() -> None:
    sim_like = model_of(line(12.5, "a", "k"), line(20.0, "a", "k"))
    real = model_of(line(6_057_733.3, "a", "start", unix_ms=1.7e12), line(6_057_900.0, "a", "k"))
    late = model_of(line(9_000_000.0, "a", "k"))
    assert payload(sim_like, title="", source="")["origin"] == 0.0
    assert payload(real, title="", source="")["origin"] == 6_057_733.3
    assert payload(late, title="", source="")["origin"] == 9_000_000.0


def test_payload_names_whom_the_nemesis_hit_and_the_failing_operations() -> None:
    model = model_of(
        line(0.0, "nemesis", "nemesis", action="crash", target="n2"),
        line(0.0, "n2", "crash"),
        line(1.0, "nemesis", "nemesis", action="partition", partition="symmetric", groups=[["n1"], ["n2", "n3"]]),
        line(2.0, "c1", "client_op", type="invoke", process=0, f="get", key="k", value=None, history_line=1),
        line(3.0, "c1", "client_op", type="ok", process=0, f="get", key="k", value="x", history_line=2),
        line(4.0, "checker", "check", checker="linearizability", verdict="illegal", summary="get k returned x",
             failing=[{"history_line": 1, "role": "stuck"}]),
    )
    data = payload(model, title="t", source="")
    labels = {data["points"]["t"][int(i)]: text for i, text in data["points"]["lb"].items()}
    assert labels == {0.0: "crash n2", 1.0: "partition symmetric: n1 | n2 n3"}
    assert data["bands"][0][3] == "partition symmetric: n1 | n2 n3"
    assert data["ops"][0][5] == "get k \u2192 x"
    assert data["ops"][0][8] == "stuck"
    [check] = data["checks"]
    assert (check["verdict"], check["ops"], check["focus"], check["text"]) == ("illegal", 1, [2.0, 3.0],
                                                                               "get k returned x")
    assert "checker" not in data["lanes"]


def test_the_overview_counts_activity_per_lane_without_timers() -> None:
    model = model_of(
        send(0.0, "a", "b", PING), recv(1.0, "b", "a", PING),
        line(2.0, "a", "timer", name="t"), line(3.0, "b", "apply"),
        send(4.0, "b", "a", PING), drop(4.0, "b", "a", "loss"),
    )
    data = payload(model, title="t", source="")
    per_lane = data["overview"]["lanes"]
    assert data["lanes"] == ["a", "b"]
    assert [sum(row) for row in per_lane] == [1, 3]  # a: one send; b: a receipt, an event, a send
    assert len(per_lane[0]) == data["overview"]["bins"]

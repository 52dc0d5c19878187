"""The page in a real browser: headless Chromium (Debian's ``chromium``;
.ci/run installs it) loads it, and the rendered DOM must hold one lane per
node and one arrow per message in the window; a screenshot is saved. Skips,
saying why, where Chromium is absent."""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tests.mapreduce._jobs import spec
from tests.viz._toy import run_toy
from tests.viz._traces import line, recv, send

from synod.harness.mapreduce import run_sim_job, scripted_crashes
from synod.sim import Tracer
from synod.viz import TraceModel, build_model, parse_lines, render_html
from synod.viz.constants import ARROWS_DRAWN_MAX, EVENTS_DRAWN_MAX

CHROMIUM_TIMEOUT_S = 180
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("chromium not installed (apt-get install chromium): the trace viewer's browser test needs it")


def run_chromium(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    proc = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


class Dom(HTMLParser):
    """Start tags of a dumped DOM: (tag, attributes)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[str, str]] = []  # (class of the <text> element, its text)
        self._in_text: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag == "text":
            self._in_text = dict(attrs).get("class") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "text":
            self._in_text = None

    def handle_data(self, data: str) -> None:
        if self._in_text is not None:
            self.texts.append((self._in_text, data))

    def text_of(self, cls: str) -> list[str]:
        return [t for c, t in self.texts if cls in c.split()]

    def order(self, *ids: str) -> list[str]:
        """The given element ids in document order."""
        return [a["id"] for _, a in self.elements if a.get("id") in ids]  # type: ignore[misc]

    def by_id(self, element_id: str) -> dict[str, str | None]:
        found = [a for _, a in self.elements if a.get("id") == element_id]
        assert len(found) == 1, element_id
        return found[0]

    def with_class(self, tag: str, *classes: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements
                if t == tag and set(classes) <= set((a.get("class") or "").split())]


def dump_dom(chromium: str, tmp_path: Path, page: Path, fragment: str = "") -> Dom:
    proc = run_chromium(chromium, tmp_path, "--window-size=1400,900", "--virtual-time-budget=5000",
                        "--dump-dom", page.as_uri() + fragment)
    dom = Dom(proc.stdout)
    viewer = dom.by_id("viewer")
    assert viewer["data-status"] == "ready", viewer.get("data-error")
    return dom


def screenshot(chromium: str, tmp_path: Path, page: Path, png: Path) -> None:
    run_chromium(chromium, tmp_path, f"--screenshot={png}", "--window-size=1400,900", page.as_uri())
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 900)
    assert len(data) > 30_000, "the screenshot is nearly blank"


def write_page(model: TraceModel, tmp_path: Path, name: str) -> Path:
    page = tmp_path / f"{name}.html"
    page.write_text(render_html(model, title=name, source=f"{name}.jsonl"), encoding="utf-8")
    return page


def check_whole_run(dom: Dom, model: TraceModel) -> None:
    """The window is the whole run: every lane, arrow, interval drawn."""
    viewer = dom.by_id("viewer")
    arrows = model.arrows
    delivered = sum(1 for a in arrows if a.status == "delivered")
    dropped = sum(1 for a in arrows if a.status == "dropped")
    assert [g["data-node"] for g in dom.with_class("g", "lane")] == model.lanes
    assert viewer["data-lanes"] == str(len(model.lanes))
    assert viewer["data-arrows-total"] == str(len(arrows))
    assert viewer["data-arrows-in-window"] == viewer["data-arrows-drawn"] == str(len(arrows))
    assert len(dom.with_class("line", "msg")) == len(arrows)
    assert len(dom.with_class("line", "msg", "delivered")) == delivered
    assert len(dom.with_class("line", "msg", "dropped")) == len(dom.with_class("path", "drop-x")) == dropped
    # The header counts each message sent once, by its fate: they add up.
    counts = model.message_counts()
    assert viewer["data-messages-total"] == str(counts["messages"])
    assert viewer["data-delivered-total"] == str(counts["delivered"])
    assert viewer["data-dropped-total"] == str(counts["dropped"])
    assert viewer["data-inflight-total"] == str(counts["in_flight"])
    assert counts["messages"] == counts["delivered"] + counts["dropped"] + counts["in_flight"]
    assert counts["duplicates"] == sum(1 for a in arrows if a.duplicate)
    downs = [iv for iv in model.intervals if iv.what == "down"]
    assert len(dom.with_class("rect", "down")) == len(downs)
    assert len(dom.with_class("rect", "state")) == len(model.states)
    assert len(dom.with_class("rect", "op")) == len(model.client_ops)
    # Timers are hidden until asked for; every other event is drawn.
    assert len(dom.with_class("path", "ev")) == sum(1 for r in model.points if r.kind != "timer")
    assert dom.with_class("path", "ev", "k-timer") == []
    assert dom.by_id("error").get("hidden") is not None


def test_toy_cluster_page_in_chromium(chromium: str, tmp_path: Path) -> None:
    """States, client operations, pauses, crashes, drops and duplicates."""
    _, lines = run_toy(seed=6, servers=3, time_ms=3000.0)
    model = build_model(parse_lines(lines))
    assert model.states and model.client_ops and model.intervals
    page = write_page(model, tmp_path, "toy")
    check_whole_run(dump_dom(chromium, tmp_path, page), model)
    screenshot(chromium, tmp_path, page, tmp_path / "run.png")


def test_mapreduce_page_in_chromium(chromium: str, tmp_path: Path) -> None:
    words = "it was the best of times it was the worst of times " * 80
    inputs = {f"/in/book-{i}.txt": (words * (i + 1)).encode() for i in range(4)}
    tracer = Tracer(keep=True)
    result = run_sim_job(spec("wc", inputs, nreduce=2, sim_compute_ms_per_mb=300_000.0), inputs, seed=3,
                         workers=3, tracer=tracer, setup=scripted_crashes([("worker-3", 700.0)], 1500.0))
    assert result.done
    assert tracer.lines is not None
    model = build_model(parse_lines(tracer.lines))
    page = write_page(model, tmp_path, "mapreduce")
    dom = dump_dom(chromium, tmp_path, page)
    check_whole_run(dom, model)
    assert [g["data-node"] for g in dom.with_class("g", "lane")] == ["coordinator", "worker-1", "worker-2", "worker-3"]
    screenshot(chromium, tmp_path, page, tmp_path / "run.png")


# Hover over the first delivered arrow, then zoom in and show the timers,
# reporting each result in a data attribute of #viewer.
PROBE = """<script>
setTimeout(function () {
  var v = document.getElementById("viewer"), tip = document.getElementById("tooltip");
  var r = document.querySelector("#arrows line.msg.delivered").getBoundingClientRect();
  document.getElementById("plot").dispatchEvent(new MouseEvent("mousemove",
    {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true}));
  v.dataset.probeTooltip = tip.hidden ? "(hidden)" : tip.textContent;
  v.dataset.probeHot = document.querySelectorAll("line.msg.hot").length;
  v.dataset.probeSpanBefore = v.dataset.windowEnd - v.dataset.windowStart;
  v.dataset.probeTimersBefore = document.querySelectorAll("path.ev.k-timer").length;
  document.getElementById("zoom-in").click();
  var timers = document.querySelector('[data-show="timers"]');
  v.dataset.probeTimersBox = timers.checked ? "checked" : "unchecked";
  timers.checked = true;
  timers.dispatchEvent(new Event("change"));
  setTimeout(function () {
    v.dataset.probeSpanAfter = v.dataset.windowEnd - v.dataset.windowStart;
    v.dataset.probeTimers = document.querySelectorAll("path.ev.k-timer").length;
  }, 200);
}, 50);
</script>
</body>"""


def test_hover_zoom_and_filters_in_chromium(chromium: str, tmp_path: Path) -> None:
    _, lines = run_toy(seed=2, servers=3, time_ms=2000.0)
    model = build_model(parse_lines(lines))
    page = write_page(model, tmp_path, "probe")
    page.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE), encoding="utf-8")
    viewer = dump_dom(chromium, tmp_path, page).by_id("viewer")
    first = next(a for a in model.arrows if a.status == "delivered")
    tooltip = viewer["data-probe-tooltip"] or ""
    assert f"{first.msg_type}  {first.src} \u2192 {first.dst}" in tooltip
    assert "received" in tooltip
    assert f"line: {first.send.where}" in tooltip  # the hovered message's own trace line
    assert viewer["data-probe-hot"] == "1"
    before, after = float(viewer["data-probe-span-before"] or 0), float(viewer["data-probe-span-after"] or 0)
    assert before == pytest.approx(model.end_ms - model.start_ms)
    assert after == pytest.approx(before / 2)
    # Timers are hidden by default (a 60 s Raft run has 13k of them); the
    # checkbox shows those of the window.
    assert viewer["data-probe-timers-box"] == "unchecked"
    assert viewer["data-probe-timers-before"] == "0"
    lo = float(viewer["data-window-start"] or 0)
    hi = float(viewer["data-window-end"] or 0)
    timers = sum(1 for r in model.points if r.kind == "timer" and lo <= r.t_ms <= hi)
    assert timers > 0
    assert viewer["data-probe-timers"] == str(timers)


def test_a_100k_line_trace_gives_a_usable_page(chromium: str, tmp_path: Path) -> None:
    """Large traces: the page embeds everything compactly, opens on a
    readable window, and samples a crowded window down to the drawing limits."""
    _, lines = run_toy(seed=5, servers=5, time_ms=230_000.0)
    assert len(lines) >= 100_000
    started = time.monotonic()
    model = build_model(parse_lines(lines))
    page = write_page(model, tmp_path, "big")
    build_s = time.monotonic() - started
    size_mb = page.stat().st_size / 1e6
    assert size_mb < 40, f"{size_mb:.1f} MB page"
    assert build_s < 120, f"{build_s:.1f} s to build the page"

    dom = dump_dom(chromium, tmp_path, page)
    viewer = dom.by_id("viewer")
    assert viewer["data-arrows-total"] == str(len(model.arrows))
    in_window = int(viewer["data-arrows-in-window"] or 0)
    assert 0 < in_window < len(model.arrows)  # opens on the start, not on a blur of the whole run
    assert len(dom.with_class("line", "msg")) == int(viewer["data-arrows-drawn"] or 0) == in_window

    whole = dump_dom(chromium, tmp_path, page, f"#window={model.start_ms},{model.end_ms}")
    viewer = whole.by_id("viewer")
    assert viewer["data-arrows-in-window"] == str(len(model.arrows))
    assert viewer["data-arrows-drawn"] == str(ARROWS_DRAWN_MAX)
    assert len(whole.with_class("line", "msg")) == ARROWS_DRAWN_MAX
    assert int(viewer["data-events-drawn"] or 0) == EVENTS_DRAWN_MAX
    assert whole.by_id("notice").get("hidden") is None  # says it is sampled
    assert [g["data-node"] for g in whole.with_class("g", "lane")] == model.lanes
    # Sampling keeps the rare, telling items first: every crash, and drops
    # up to half the arrows.
    crashes = sum(1 for r in model.points if r.kind == "crash")
    assert crashes > 0
    assert len(whole.with_class("path", "ev", "k-crash")) == crashes
    dropped = sum(1 for a in model.arrows if a.status == "dropped")
    assert len(whole.with_class("line", "msg", "dropped")) == min(dropped, ARROWS_DRAWN_MAX // 2)


def _labelled_trace() -> list[str]:
    """Nemesis actions with their targets and groups, a leader whose label
    arrows and markers cross, and a check naming a failing get."""
    out = [line(0.0, "s1", "state", role="leader", term=3), line(0.0, "s2", "state", role="follower", term=3)]
    for k in range(40):  # arrows and drops over the leader's label
        out += [send(1.0 + k, "s1", "s2", {"type": "raft.AppendEntries", "k": k}),
                line(1.0 + k, "s1", "drop", dst="s2", corr=0, reason="loss") if k % 2 else
                recv(3.0 + k, "s2", "s1", {"type": "raft.AppendEntries", "k": k})]
        out.append(line(1.5 + k, "s1", "ignore", reason="stale term"))
    out += [
        line(5.0, "nemesis", "nemesis", action="partition", partition="symmetric", groups=[["s1"], ["s2"]]),
        line(30.0, "nemesis", "nemesis", action="heal_partition"),
        line(35.0, "nemesis", "nemesis", action="crash", target="s2"), line(35.0, "s2", "crash"),
        line(38.0, "s2", "timer", name="election"),
        line(10.0, "c1", "client_op", type="invoke", process=0, f="put", key="k", value="a", history_line=1),
        line(14.0, "c1", "client_op", type="ok", process=0, f="put", key="k", value="a", history_line=2),
        line(20.0, "c1", "client_op", type="invoke", process=0, f="get", key="k", value=None, history_line=3),
        line(22.0, "c1", "client_op", type="ok", process=0, f="get", key="k", value=None, history_line=4),
        line(45.0, "checker", "check", checker="linearizability", verdict="illegal",
             summary="get k returned nil, but the last completed put was a",
             failing=[{"history_line": 1, "role": "window"}, {"history_line": 3, "role": "stuck"}]),
    ]
    return out


def test_labels_checks_and_the_leaders_label_in_chromium(chromium: str, tmp_path: Path) -> None:
    model = build_model(parse_lines(_labelled_trace()))
    page = write_page(model, tmp_path, "labels")
    dom = dump_dom(chromium, tmp_path, page, "#window=0,45")
    # Nemesis markers and bands say whom they hit.
    assert "crash s2" in dom.text_of("ev-label")
    assert "partition symmetric: s1 | s2" in dom.text_of("band-label")
    # The role labels are drawn after (over) the arrows and event markers.
    assert dom.order("arrows", "events", "state-labels") == ["arrows", "events", "state-labels"]
    assert "leader t3" in dom.text_of("state-label")
    # The checker's failing operations: outlined, named, and said so above.
    assert len(dom.with_class("rect", "op", "failing")) == 2
    assert len(dom.with_class("rect", "op", "failing", "stuck")) == 1
    assert dom.by_id("check").get("hidden") is None
    assert dom.by_id("viewer")["data-failing-ops"] == "2"
    assert "get k \u2192 nil" in dom.text_of("op-label")  # the stale read: it returned nothing
    assert dom.text_of("op-label").count("put k a") == 1
    # A failed check opens on the failing operations (the stuck get).
    focused = dump_dom(chromium, tmp_path, page).by_id("viewer")
    lo, hi = float(focused["data-window-start"] or 0), float(focused["data-window-end"] or 0)
    assert lo <= 20.0 and hi >= 22.0
    assert hi - lo < (model.end_ms - model.start_ms) / 2


# Drag across the overview strip from 20% to 40% of its width (a new
# window), then click at 80% (centers the window there).
BRUSH = """<script>
setTimeout(function () {
  var v = document.getElementById("viewer"), ov = document.getElementById("overview");
  var r = ov.getBoundingClientRect(), bg = ov.querySelector("rect").getBoundingClientRect();
  function at(f) { return bg.left + f * bg.width; }
  var y = r.top + r.height / 2;
  ov.dispatchEvent(new MouseEvent("mousedown", {clientX: at(0.2), clientY: y, bubbles: true}));
  window.dispatchEvent(new MouseEvent("mousemove", {clientX: at(0.3), clientY: y, bubbles: true}));
  window.dispatchEvent(new MouseEvent("mouseup", {clientX: at(0.4), clientY: y, bubbles: true}));
  setTimeout(function () {
    v.dataset.probeBrushA = v.dataset.windowStart; v.dataset.probeBrushB = v.dataset.windowEnd;
    v.dataset.probeRows = ov.querySelectorAll("rect.ov-cell").length;
    ov.dispatchEvent(new MouseEvent("mousedown", {clientX: at(0.8), clientY: y, bubbles: true}));
    window.dispatchEvent(new MouseEvent("mouseup", {clientX: at(0.8), clientY: y, bubbles: true}));
    setTimeout(function () {
      v.dataset.probeClickA = v.dataset.windowStart; v.dataset.probeClickB = v.dataset.windowEnd;
    }, 150);
  }, 150);
}, 50);
</script>
</body>"""


def test_brushing_the_overview_strip_chooses_the_window(chromium: str, tmp_path: Path) -> None:
    _, lines = run_toy(seed=2, servers=3, time_ms=10_000.0)
    model = build_model(parse_lines(lines))
    page = write_page(model, tmp_path, "brush")
    page.write_text(page.read_text(encoding="utf-8").replace("</body>", BRUSH), encoding="utf-8")
    viewer = dump_dom(chromium, tmp_path, page).by_id("viewer")
    span = model.end_ms - model.start_ms
    a, b = float(viewer["data-probe-brush-a"] or 0), float(viewer["data-probe-brush-b"] or 0)
    assert a == pytest.approx(model.start_ms + 0.2 * span, abs=span * 0.01)
    assert b == pytest.approx(model.start_ms + 0.4 * span, abs=span * 0.01)
    assert int(viewer["data-probe-rows"] or 0) > len(model.lanes)  # a density row per lane
    ca, cb = float(viewer["data-probe-click-a"] or 0), float(viewer["data-probe-click-b"] or 0)
    assert (ca + cb) / 2 == pytest.approx(model.start_ms + 0.8 * span, abs=span * 0.01)
    assert cb - ca == pytest.approx(b - a, rel=1e-6)

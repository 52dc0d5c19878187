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

from synod.mapreduce.simjob import run_sim_job, scripted_crashes
from synod.sim import Tracer
from synod.viz import TraceModel, build_model, parse_lines, render_html
from synod.viz.constants import ARROWS_DRAWN_MAX, EVENTS_DRAWN_MAX
from tests.mapreduce._jobs import spec
from tests.viz._toy import run_toy

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
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

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
    assert viewer["data-delivered-total"] == str(delivered)
    assert viewer["data-dropped-total"] == str(dropped)
    downs = [iv for iv in model.intervals if iv.what == "down"]
    assert len(dom.with_class("rect", "down")) == len(downs)
    assert len(dom.with_class("rect", "state")) == len(model.states)
    assert len(dom.with_class("rect", "op")) == len(model.client_ops)
    assert len(dom.with_class("path", "ev")) == len(model.points)
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


# Hover over the first delivered arrow, then zoom in and hide the timers,
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
  timers.checked = false;
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
    timers = sum(1 for r in model.points if r.kind == "timer")
    assert timers > 0
    assert viewer["data-probe-timers-before"] == str(timers)
    assert viewer["data-probe-timers"] == "0"


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

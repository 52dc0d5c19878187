"""Limits of the trace viewer: how much it reads, embeds and draws."""

from __future__ import annotations

__all__ = [
    "TRACE_LINES_MAX", "LINE_CHARS_MAX", "DETAIL_VALUE_CHARS_MAX", "DETAIL_CHARS_MAX",
    "OVERVIEW_BINS", "LABEL_CHARS_MAX", "CLIENT_OP_ROWS_MAX", "ARROWS_DRAWN_MAX", "EVENTS_DRAWN_MAX",
]

# Input. A trace longer than this is refused rather than exhausting memory.
TRACE_LINES_MAX = 5_000_000
LINE_CHARS_MAX = 1_000_000

# What the page embeds for hovering: each field's value is cut to this many
# characters, and one record's whole text to DETAIL_CHARS_MAX, so a trace of
# 100k lines with large messages still gives a page of tens of MB at most.
DETAIL_VALUE_CHARS_MAX = 160
DETAIL_CHARS_MAX = 480

# The overview strip above the diagram: message density in this many bins.
OVERVIEW_BINS = 600

# A client operation's or nemesis action's label on the page, in characters.
LABEL_CHARS_MAX = 60

# Concurrent client processes on one lane are drawn on this many rows.
CLIENT_OP_ROWS_MAX = 4

# What the browser draws in one window; beyond these the window is sampled
# evenly and the page says so (zooming in shows everything).
ARROWS_DRAWN_MAX = 2500
EVENTS_DRAWN_MAX = 3000

"""Seeing a run: a space-time diagram of any synod trace, as one HTML page.

A trace (DESIGN.md section 5) is JSON lines ``{t_ms, node, kind, ...}``.
The viewer reads one or more trace files, merges them by time, and builds a
model (:class:`TraceModel`):

- one **lane** per node (the nemesis on top, clients at the bottom);
- one **arrow** per message, from its ``send`` to its ``recv``, or to its
  ``drop`` (marked with an X), or left as an in-flight stub; pairing rules
  in :mod:`synod.viz._pairing`;
- **intervals** a node was down (crash or exit until restart) or paused;
- **state** spans (``{"kind": "state", "role": ..., "term": ...}``) drawn
  as colored bands, and **client operations** (``client_op`` invoke then
  ok/fail/info) drawn as bars;
- every other record (timers, crashes, nemesis actions, node-defined events
  such as MapReduce's ``assign``) as a **point** marker; a nemesis action
  labelled with whom it hit (:func:`nemesis_label`);
- ``check`` records (a checker's verdict) name the client operations of a
  failing window, which the page outlines in red.

:func:`render_html` writes the model into a self-contained page (inline
CSS, JavaScript and data; no network): zoom and pan, a slider and an
overview strip of the whole run (activity per lane) to brush a window in,
hover for each item's fields; timers hidden until asked for. The browser draws only the
visible window, sampled past a fixed number of elements, so 100k-line
traces stay usable. ``synod trace view`` is the command-line entry.
"""

from synod.viz._html import payload, render_html
from synod.viz._load import Record, TraceError, parse_lines, read_trace
from synod.viz._model import (
    Band,
    ClientOp,
    Interval,
    StateSpan,
    TraceModel,
    build_model,
    load_model,
    nemesis_label,
    partition_groups,
)
from synod.viz._pairing import Arrow, Pairing, message_type, pair_messages

__all__ = [
    "Record", "TraceError", "read_trace", "parse_lines",
    "Arrow", "Pairing", "pair_messages", "message_type",
    "TraceModel", "Interval", "StateSpan", "ClientOp", "Band", "build_model", "load_model",
    "nemesis_label", "partition_groups",
    "render_html", "payload",
]

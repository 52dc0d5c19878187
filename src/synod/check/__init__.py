"""synod.check: checkers for histories of concurrent operations (DESIGN.md section 7).

Linearizability (Herlihy & Wing 1990) by the Wing-Gong/Lowe search with
memoization and partitioning by key, in the shape of Porcupine; models for a
register, a cas register, a key-value map, a set, a queue and a mutex; readers
for Jepsen EDN histories, Jepsen ``jepsen.util`` logs and JSON lines; an HTML
page of a failing window; and sequential consistency with FIFO client order
against a known write order (ZooKeeper's plain reads, ``check_sequential``).
See docs/checker.md.
"""

from synod.check.formats import FORMATS, detect_format, parse_history, read_history
from synod.check.history import INF, Event, HistoryError, HistoryWarning, Operation, operations
from synod.check.linearizability import CheckResult, Counterexample, check_events, check_operations
from synod.check.models import (
    ILLEGAL,
    KV,
    MODELS,
    CasRegister,
    Model,
    Mutex,
    Queue,
    Register,
    SetModel,
    make_model,
)
from synod.check.report import explain, json_value, render_html, why_illegal, window_json
from synod.check.sequential import ClientOp, OrderedWrite, SequentialResult, check_sequential

__all__ = [
    "FORMATS", "detect_format", "parse_history", "read_history", "INF", "Event", "HistoryError",
    "HistoryWarning", "Operation",
    "operations", "CheckResult", "Counterexample", "check_events", "check_operations", "ILLEGAL", "KV",
    "MODELS", "CasRegister", "Model", "Mutex", "Queue", "Register", "SetModel", "make_model", "explain",
    "json_value", "render_html", "why_illegal", "window_json", "ClientOp", "OrderedWrite", "SequentialResult",
    "check_sequential",
]

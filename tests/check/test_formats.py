"""Reading histories: Jepsen EDN maps, jepsen.util log lines, JSON lines;
pairing events into operations; malformed input named by line."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.check._histories import hist

from synod.check import (
    INF,
    HistoryError,
    HistoryWarning,
    check_events,
    detect_format,
    make_model,
    operations,
    parse_history,
    read_history,
)
from synod.check._edn import EdnError, Keyword, read_edn
from synod.core import ConfigError


def test_edn_reader_reads_the_values_jepsen_writes() -> None:
    value = read_edn('{:process 0, :type :ok, :f :cas, :value [1 -2], :time 17, :s "a\\"b", '
                     ':x nil, :t true, :set #{1 2}, :inst #inst "2024-01-01", :r 1/2, :e 1.5e3, :m 3N}')
    assert value == {"process": 0, "type": "ok", "f": "cas", "value": [1, -2], "time": 17, "s": 'a"b',
                     "x": None, "t": True, "set": frozenset({1, 2}), "inst": "2024-01-01", "r": 0.5,
                     "e": 1500.0, "m": 3}
    assert isinstance(value["type"], Keyword)
    assert repr(Keyword("ok")) == ":ok"


@pytest.mark.parametrize("text, message", [
    ("{:a 1", "missing '}'"), ("{:a}", "even number"), ('"abc', "unterminated string"),
    ("[1 2] 3", "after the value"), ("1abc", "bad number"), (":", "empty keyword"), (")", "unexpected ')'"),
    ("[" * 200 + "]" * 200, "nested deeper"),
])
def test_edn_reader_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(EdnError, match=re.escape(message)) as e:
        read_edn(text)
    assert e.value.column >= 1


def test_edn_history_lines() -> None:
    text = ('{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}\n'
            '\n'
            '{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}\n'
            '{:process :nemesis, :type :info, :f :start, :value nil}\n')
    events = parse_history(text, "edn")
    assert [(e.process, e.type, e.f, e.key, e.value, e.time, e.line) for e in events] == [
        (0, "invoke", "append", "0", "x 0 0 y", 0, 1), (0, "ok", "append", "0", "x 0 0 y", 1, 3),
        ("nemesis", "info", "start", None, None, 2, 4)]
    ops = operations(events)
    assert len(ops) == 1, "the nemesis event is not a client operation"
    assert ops[0].status == "ok"
    assert ops[0].lines == (1, 3)


def test_edn_vector_history_with_times() -> None:
    text = ("[{:process 1, :type :invoke, :f :read, :value nil, :time 100}\n"
            " {:process 1, :type :ok, :f :read, :value 3, :time 250}]")
    (op,) = operations(parse_history(text))
    assert (op.call, op.ret, op.output) == (100, 250, 3)


JEPSEN_HISTORY = """;; Jepsen history.edn, as a list, after comment lines
; written by a test run
(
 {:process 0, :type :invoke, :f :write, :value 3, :time 10}
 {:process 0,
  :type :ok, :f :write, :value 3, :time 20}

 ; a comment between events
 {:process 1, :type :invoke, :f :read, :value nil, :time 30} {:process 1, :type :ok, :f :read, :value 3, :time 40}
)
"""


def test_edn_history_as_a_list_after_comment_lines() -> None:
    """A Jepsen history.edn: ';' comment lines, then one list '( ... )' of maps."""
    assert detect_format(JEPSEN_HISTORY) == "edn"
    events = parse_history(JEPSEN_HISTORY, source="h")
    assert [(e.process, e.type, e.f, e.value, e.time) for e in events] == [
        (0, "invoke", "write", 3, 10), (0, "ok", "write", 3, 20), (1, "invoke", "read", None, 30),
        (1, "ok", "read", 3, 40)]
    vector = JEPSEN_HISTORY.replace("(\n", "[\n").replace("\n)\n", "\n]\n")
    assert parse_history(vector) == events, "a vector reads the same as a list"


def test_edn_sequence_events_keep_their_file_lines() -> None:
    """Each event of a whole-file vector or list names the line its map starts on, not its position."""
    vector = "[{:process 0, :type :invoke, :f :read}\n\n\n {:process 0, :type :ok, :f :read, :value 1}]"
    assert [e.line for e in parse_history(vector)] == [1, 4]
    events = parse_history(JEPSEN_HISTORY)
    assert [e.line for e in events] == [4, 5, 9, 9]
    ops = operations(events)
    assert [op.lines for op in ops] == [(4, 5), (9, 9)]


def test_edn_sequence_errors_name_their_file_line() -> None:
    text = "; comment\n[{:process 0, :type :invoke, :f :read}\n {:process 0 :type}]\n"
    with pytest.raises(HistoryError, match="bad EDN") as e:
        parse_history(text, source="h")
    assert e.value.line == 3
    with pytest.raises(HistoryError, match="after the history") as e:
        parse_history("[{:process 0, :type :invoke, :f :read}]\n{:a 1}\n", source="h")
    assert e.value.line == 2
    with pytest.raises(HistoryError, match="must be an EDN map") as e:
        parse_history("(\n{:process 0, :type :invoke, :f :read}\n7)", source="h")
    assert e.value.line == 3


def test_jepsen_log_lines_as_porcupine_reads_them() -> None:
    text = ("2014-06-01 12:00:00,000 unrelated line\n"
            "INFO  jepsen.util - 4\t:invoke\t:cas\t[1 4]\n"
            "INFO  jepsen.util - 4\t:fail\t:cas\t[1 4]\n"
            "INFO  jepsen.util - 2 :invoke :write 3\n"
            "INFO  jepsen.util - 1\t:invoke\t:read\tnil\n"
            "INFO  jepsen.util - 2\t:info\t:write\t:timed-out\n"
            "INFO  jepsen.util - 1\t:fail\t:read\t:timed-out\n"
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n"
            "INFO  jepsen.util - 0\t:ok\t:read\t3\n"
            "INFO  jepsen.util - 5\t:invoke\t:write\t2\n")
    assert detect_format(text) == "jepsen-log"
    ops = operations(parse_history(text))
    by_proc = {op.process: op for op in ops}
    assert by_proc[4].status == "fail"
    assert by_proc[4].value == (1, 4)
    assert (by_proc[2].status, by_proc[2].value, by_proc[2].ret) == ("info", 3, INF), \
        "an :info write keeps the invoked value and stays open to the end"
    assert by_proc[1].status == "fail", "a timed-out read is a read with no result"
    assert (by_proc[0].status, by_proc[0].output) == ("ok", 3)
    assert (by_proc[5].status, by_proc[5].ret) == ("info", INF), "never completed: open to the end"
    assert [op.lines[0] for op in ops] == [2, 4, 5, 8, 10]


def test_json_lines() -> None:
    text = ('{"process": 3, "type": "invoke", "f": "cas", "key": "k", "value": [1, 2]}\n'
            '{"process": 3, "type": "ok", "f": "cas", "key": "k", "value": [1, 2]}\n'
            '{"process": 4, "type": "invoke", "f": "read", "key": ["a", 1], "value": null, "time": 5}\n')
    assert detect_format(text) == "jsonl"
    ops = operations(parse_history(text))
    assert (ops[0].key, ops[0].value, ops[0].status) == ("k", (1, 2), "ok")
    assert (ops[1].key, ops[1].status, ops[1].call) == (("a", 1), "info", 5)


def test_empty_history_is_no_operations(tmp_path: Path) -> None:
    p = tmp_path / "empty.log"
    p.write_text("")
    assert read_history(p) == []


@pytest.mark.parametrize("fmt, text, line, message", [
    ("jsonl", '{"process": 1, "type": "invoke", "f": "read"}\n{"process": 1, "type": "ok", "f": "read", ',
     2, "bad JSON"),
    ("jsonl", '{"process": 1, "type": "begin", "f": "read"}', 1, "type must be one of"),
    ("jsonl", '{"type": "invoke", "f": "read"}', 1, "no 'process' field"),
    ("jsonl", '[1, 2]', 1, "must be a JSON object"),
    ("jsonl", '{"process": 1, "type": "invoke", "f": "read", "time": "noon"}', 1, "time must be a finite number"),
    ("jsonl", '{"process": 1, "type": "invoke", "f": "read", "time": Infinity}', 1, "time must be a finite"),
    ("jsonl", '{"process": 1.5, "type": "invoke", "f": "read"}', 1, "process must be"),
    ("jsonl", '{"process": 1, "type": "invoke", "f": "read", "key": {"a": 1}}', 1, "key must be"),
    ("edn", '{:process 0, :type :invoke, :f :get, :key "1", :value nil}\n{:process 0 :type}', 2, "bad EDN"),
    ("edn", '[1 2]', 1, "must be an EDN map"),
    ("jepsen-log", "INFO  jepsen.util - 4\t:invoke\t:cas\t[1 4]\nINFO  jepsen.util - x\n", 2, "not a 'jepsen.util"),
    ("jepsen-log", "INFO  jepsen.util - 4\t:invoke\t:cas\t[1 4", 1, "bad value"),
    ("jepsen-log", "INFO  jepsen.util - four\t:invoke\t:cas\t[1 4]", 1, "process must be"),
])
def test_malformed_lines_are_named(fmt: str, text: str, line: int, message: str) -> None:
    with pytest.raises(HistoryError, match=re.escape(message)) as e:
        parse_history(text, fmt, source="h")
    assert e.value.line == line
    assert str(e.value).startswith(f"h:{line}: ")
    assert isinstance(e.value, ConfigError)


@pytest.mark.parametrize("lines, line, message", [
    (["0 ok read 1"], 1, "has no invoke before it"),
    (["0 invoke read", "0 invoke write 1"], 2, "while its read (line 1) is still outstanding"),
    (["0 invoke read", "0 ok write 1"], 2, "completes process 0's read"),
    (["0 invoke get @a", "0 ok get @b \"\""], 2, "on key 'b' completes an invoke on key 'a'"),
])
def test_pairing_errors_are_named(lines: list[str], line: int, message: str) -> None:
    with pytest.raises(HistoryError, match=re.escape(message)) as e:
        operations(hist(*lines), source="h")
    assert e.value.line == line


def test_time_going_backwards_takes_file_order_with_a_warning() -> None:
    """Jepsen's checkers take the file's order as the real-time order; so do we, and say so."""
    events = parse_history('{"process": 1, "type": "invoke", "f": "write", "value": 1, "time": 50}\n'
                           '{"process": 1, "type": "ok", "f": "write", "value": 1, "time": 40}\n'
                           '{"process": 2, "type": "invoke", "f": "read", "time": 10}\n'
                           '{"process": 2, "type": "ok", "f": "read", "value": null, "time": 20}\n', "jsonl")
    with pytest.warns(HistoryWarning, match="time goes backwards: 40 after 50 .line 1. .and 1 more") as w:
        ops = operations(events, source="h")
    assert len(w) == 1, "one warning per history"
    assert w[0].message.line == 2
    assert str(w[0].message).startswith("h:2: ")
    assert [(op.call, op.ret) for op in ops] == [(0, 1), (2, 3)], "positions stand for times"
    with pytest.warns(HistoryWarning):
        result = check_events(make_model("register"), events)
    assert result.verdict == "illegal", "in file order the read of nil follows the write of 1"


def test_monotone_times_are_kept_and_give_no_warning() -> None:
    events = parse_history('{"process": 1, "type": "invoke", "f": "read", "time": 5}\n'
                           '{"process": 1, "type": "ok", "f": "read", "time": 5}\n', "jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (op,) = operations(events)
    assert (op.call, op.ret) == (5, 5)


def test_unreadable_and_undetectable_inputs(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot read"):
        read_history(tmp_path / "missing.jsonl")
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(HistoryError, match="not UTF-8"):
        read_history(binary)
    prose = tmp_path / "prose.txt"
    prose.write_text("\nhello world\n")
    with pytest.raises(HistoryError, match="cannot tell the format") as e:
        read_history(prose)
    assert e.value.line == 2
    with pytest.raises(HistoryError, match="unknown format"):
        parse_history("", "yaml")


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from([
        '{"process": 1, "type": "invoke", "f": "read", "value": null}', '{"process": 1, "type": "ok", "f": "read"}',
        '{"process": 2, "type": "info", "f": "cas", "value": [1]}', '{"process": 2, "type": "invoke", "f": "cas"}',
        "{:process 0, :type :invoke, :f :get, :key [1 2], :value #{1}}", "{:process 0, :type :ok, :f :get}",
        "INFO  jepsen.util - 4\t:invoke\t:cas\t[1 4]", "INFO  jepsen.util - 4\t:ok\t:read\t{:a",
        '{"process": 3, "type": "fail", "f": "append", "key": "k", "value": 7}', "[", "{", "nil", "",
        "{:process 5, :type :invoke, :f :write, :value {1 2, :a 3, \"s\" [4]}}",
    ]), max_size=12).map("\n".join)))
def test_any_input_is_a_verdict_or_a_history_error(text: str) -> None:
    """Malformed input of any kind ends in HistoryError, never another exception."""
    for model in ("register", "cas-register", "kv", "set", "queue", "mutex"):
        try:
            check_events(make_model(model), parse_history(text, "auto", source="fuzz"), timeout_s=5)
        except HistoryError:
            pass

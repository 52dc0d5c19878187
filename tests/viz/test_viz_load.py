"""Reading traces: bad input is one error naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.viz._traces import line

from synod.viz import TraceError, parse_lines, read_trace


def test_records_keep_their_fields_and_sort_stably_by_time() -> None:
    records = parse_lines([line(2.0, "a", "x", v=1), "", line(1.0, "b", "y"), line(2.0, "c", "z"), "   "])
    assert [(r.t_ms, r.node, r.kind) for r in records] == [(1.0, "b", "y"), (2.0, "a", "x"), (2.0, "c", "z")]
    assert [r.index for r in records] == [0, 1, 2]
    assert records[1].fields == {"v": 1}
    assert records[1].where == "<trace>:1"
    assert records[0].where == "<trace>:3"


@pytest.mark.parametrize(("text", "message"), [
    ('{"t_ms": 1, "node": "a"', "t.jsonl:2: not JSON"),
    ("[1, 2]", "t.jsonl:2: not a JSON object"),
    ('{"t_ms": 1, "node": "a"}', "t.jsonl:2: no 'kind' field"),
    ('{"t_ms": "soon", "node": "a", "kind": "k"}', "t.jsonl:2: 't_ms' is not a finite number"),
    ('{"t_ms": NaN, "node": "a", "kind": "k"}', "t.jsonl:2: 't_ms' is not a finite number"),
    ('{"t_ms": 1, "node": 7, "kind": "k"}', "t.jsonl:2: 'node' and 'kind' must be strings"),
])
def test_a_bad_line_is_named_by_file_and_number(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(line(0.0, "a", "k") + "\n" + text + "\n" + line(2.0, "a", "k") + "\n")
    with pytest.raises(TraceError) as info:
        read_trace([path])
    assert str(info.value).startswith(str(tmp_path / message))
    assert "\n" not in str(info.value)


def test_missing_file_directory_and_bad_encoding(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        read_trace([tmp_path / "absent.jsonl"])
    with pytest.raises(TraceError, match="is a directory"):
        read_trace([tmp_path])
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(line(0.0, "a", "k").encode() + b"\n\xff\xfe\n")
    with pytest.raises(TraceError, match=r"bad.jsonl:2: not UTF-8"):
        read_trace([bad])
    with pytest.raises(TraceError, match="no trace file"):
        read_trace([])
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(TraceError, match=r"empty.jsonl: no trace records"):
        read_trace([tmp_path / "empty.jsonl"])


def test_several_files_merge_by_time(tmp_path: Path) -> None:
    """A real run writes one trace per node process; the viewer merges them."""
    (tmp_path / "n1.jsonl").write_text(line(1.0, "n1", "a") + "\n" + line(3.0, "n1", "c") + "\n")
    (tmp_path / "n2.jsonl").write_text(line(2.0, "n2", "b") + "\n")
    records = read_trace([tmp_path / "n1.jsonl", tmp_path / "n2.jsonl"])
    assert [r.kind for r in records] == ["a", "b", "c"]
    assert records[1].where.endswith("n2.jsonl:1")

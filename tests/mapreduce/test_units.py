"""Unit tests of MapReduce's pieces: hashing, splits, map output files, word
splitting and app loading."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core import ConfigError
from synod.mapreduce._splits import plan_splits, read_split
from synod.mapreduce.app import fnv1a_32, ihash, load_app
from synod.mapreduce.apps._words import words
from synod.mapreduce.worker import pack_map_output, region_slice
from synod.sim import new_memory_fs


@pytest.mark.parametrize("data, expected", [
    (b"", 0x811C9DC5), (b"a", 0xE40C292C), (b"foobar", 0xBF9CF968),
])
def test_fnv1a_32_matches_the_published_vectors(data: bytes, expected: int) -> None:
    """Go's hash/fnv New32a, which the lab's ihash uses."""
    assert fnv1a_32(data) == expected


def test_ihash_clears_the_top_bit() -> None:
    assert ihash("foobar") == 0xBF9CF968 & 0x7FFFFFFF


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="ab\n", max_size=300), split=st.integers(min_value=1, max_value=40))
def test_every_line_is_read_by_exactly_one_split(text: str, split: int) -> None:
    """Section 3.1: the M splits cover the input; a line belongs to the split
    it starts in, so concatenating the splits gives the file back."""
    fs = new_memory_fs()
    data = text.encode()
    fs.pipe_file("/in.txt", data)
    splits = plan_splits([("/in.txt", len(data))], split)
    assert b"".join(read_split(fs, p, off, n) for p, off, n in splits) == data


def test_map_output_regions_round_trip_and_corruption_is_caught() -> None:
    regions = [b"alpha", b"", b"gamma" * 100]
    out = pack_map_output(regions)
    from synod.core import scan_records
    for r, region in enumerate(regions):
        scan = scan_records(region_slice(out, r))
        assert scan.records == [region]
    assert region_slice(out, 3) is None
    flipped = bytearray(out)
    flipped[5] ^= 1  # inside the index record's checksum
    assert region_slice(bytes(flipped), 0) is None
    body = bytearray(out)
    body[-3] ^= 0x10  # inside the last region
    assert scan_records(region_slice(bytes(body), 2)).error is not None


def test_words_are_maximal_runs_of_letters() -> None:
    assert words("It's 2 o'clock--naïve Ünïcode²x_y") == ["It", "s", "o", "clock", "naïve", "Ünïcode", "x", "y"]
    assert words("don't stop") == ["don", "t", "stop"]


def test_load_app_errors_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_app("no.such.module")
    bad = tmp_path / "nomap.py"
    bad.write_text("def reduce(k, v):\n    return ''\n")
    with pytest.raises(ConfigError, match="no map"):
        load_app(str(bad))
    with pytest.raises(ConfigError, match="takes no options"):
        load_app("wc", {"x": "1"})

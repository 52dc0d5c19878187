"""Unit tests of MapReduce's pieces: hashing, splits, map output files, word
splitting and app loading."""

from __future__ import annotations

import dataclasses
from collections.abc import Coroutine
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core import ConfigError
from synod.mapreduce._splits import plan_splits, read_range
from synod.mapreduce._storage import FsStorage
from synod.mapreduce.app import fnv1a_32, ihash, load_app, partition_hash
from synod.mapreduce.apps._words import words
from synod.mapreduce.constants import SPLIT_RANGES_MAX
from synod.mapreduce.worker import pack_map_output, partition_pairs, read_region, region_slice
from synod.sim import new_memory_fs


@pytest.mark.parametrize("data, expected", [
    (b"", 0x811C9DC5), (b"a", 0xE40C292C), (b"foobar", 0xBF9CF968),
])
def test_fnv1a_32_matches_the_published_vectors(data: bytes, expected: int) -> None:
    """Go's hash/fnv New32a, which the lab's ihash uses."""
    assert fnv1a_32(data) == expected


def test_ihash_clears_the_top_bit() -> None:
    assert ihash("foobar") == 0xBF9CF968 & 0x7FFFFFFF


def test_partition_hash_is_the_crc32_of_the_utf8_key() -> None:
    """The default partitioner's hash: CRC-32's check value, and a key
    that is not ASCII hashed as its UTF-8 bytes."""
    assert partition_hash("123456789") == 0xCBF43926
    assert partition_hash("\u00e9t\u00e9") == 0x44D16CD4


def test_partition_pairs_groups_by_key_into_hash_mod_r_regions() -> None:
    """Section 4.1: key k's values, in map order, in region hash(k) mod R;
    an app's partitioner instead when it has one, checked against R."""
    pairs = [("b", "1"), ("a", "2"), ("b", "3"), ("\u00e9", "4")]
    regions = partition_pairs(iter(pairs), 3, load_app("wc"), None, False)
    assert regions == [
        {k: v for k, v in {"a": ["2"], "b": ["1", "3"], "\u00e9": ["4"]}.items() if partition_hash(k) % 3 == r}
        for r in range(3)]
    lab = dataclasses.replace(load_app("wc"), partition=lambda key, nreduce, plan: ihash(key) % nreduce)
    regions = partition_pairs(iter(pairs), 3, lab, None, False)
    assert regions[ihash("b") % 3]["b"] == ["1", "3"]
    wrong = dataclasses.replace(lab, partition=lambda key, nreduce, plan: nreduce)
    with pytest.raises(ValueError, match="outside"):
        partition_pairs(iter(pairs), 3, wrong, None, False)


def _now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (``FsStorage``'s) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine suspended")


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet="ab\n", max_size=300), min_size=1, max_size=8),
       split=st.integers(min_value=0, max_value=400))
def test_splits_cover_the_input_exactly(texts: list[str], split: int) -> None:
    """Section 3.1: the M splits cover the input; a line belongs to the split
    it starts in, so concatenating each file's ranges, split after split,
    gives every file back; a split packs several small files (never past the
    split size) or holds one range of a large file."""
    fs = new_memory_fs()
    files = {f"/in-{i}.txt": t.encode() for i, t in enumerate(texts)}
    for path, data in files.items():
        fs.pipe_file(path, data)
    splits = plan_splits([(p, len(d)) for p, d in files.items()], split)
    read: dict[str, bytes] = dict.fromkeys(files, b"")
    for s in splits:
        assert 1 <= len(s) <= SPLIT_RANGES_MAX
        if len(s) > 1 or s[0][2] == -1:
            assert all(n == -1 for _, _, n in s)  # whole small files
            assert split == 0 or sum(len(files[p]) for p, _, _ in s) <= split
        for path, offset, length in s:
            read[path] += _now(read_range(FsStorage(), SimpleNamespace(fs=fs), path, offset, length))
    assert read == files
    assert [p for s in splits for p, off, _ in s if off == 0] == list(files)  # input order, each file once
    if split == 0:
        assert len(splits) == len(files)


def test_small_files_are_packed_and_large_files_cut() -> None:
    """CombineFileInputFormat's packing: 4 files of 30 bytes and one of 100,
    split size 64: two 2-file splits, then the large file in 2 ranges."""
    sizes = [("/a", 30), ("/b", 30), ("/c", 30), ("/d", 30), ("/big", 100), ("/e", 5)]
    assert plan_splits(sizes, 64) == [
        (("/a", 0, -1), ("/b", 0, -1)), (("/c", 0, -1), ("/d", 0, -1)),
        (("/big", 0, 64),), (("/big", 64, 36),), (("/e", 0, -1),),
    ]
    assert plan_splits(sizes, 0) == [((p, 0, -1),) for p, _ in sizes]
    many = [(f"/f{i}", 0) for i in range(SPLIT_RANGES_MAX + 1)]
    assert [len(s) for s in plan_splits(many, 1)] == [SPLIT_RANGES_MAX, 1]


def test_map_output_regions_round_trip_and_corruption_is_caught() -> None:
    regions = [b"alpha", b"", b"gamma" * 100]
    out = pack_map_output(regions)
    from synod.core import scan_records
    for r, region in enumerate(regions):
        scan = scan_records(region_slice(out, r))
        assert scan.records == [region]
    assert region_slice(out, 3) is None
    whole = scan_records(out)   # the file: the index record, then one record per region
    assert whole.error is None and whole.records[1:] == regions and len(whole.records[0]) == 16 * len(regions)
    flipped = bytearray(out)
    flipped[5] ^= 1  # inside the index record's checksum
    assert region_slice(bytes(flipped), 0) is None
    body = bytearray(out)
    body[-3] ^= 0x10  # inside the last region
    assert scan_records(region_slice(bytes(body), 2)).error is not None


def test_a_region_is_read_without_reading_the_whole_map_output() -> None:
    """A holder serves one region from its index and its own bytes (it
    read the whole file, about R times the region, for each request)."""
    regions = [bytes([r]) * 10_000 for r in range(8)]
    out = pack_map_output(regions)
    asked: list[tuple[int, int]] = []

    def read(offset: int, length: int) -> bytes:
        asked.append((offset, length))
        return out[offset:offset + length]

    from synod.core import scan_records
    got = read_region(read, 5)
    assert got is not None and scan_records(got[0]).records == [regions[5]]
    assert sum(length for _, length in asked) < 10_000 + 1_000
    asked.clear()
    piece = read_region(read, 5, start=100, length_max=50)   # a FetchRegion chunk: that range alone
    assert piece == (got[0][100:150], len(got[0]))
    assert sum(length for _, length in asked) < 50 + 1_000
    assert read_region(read, 5, start=len(got[0]) + 1) is None                  # past the region
    assert read_region(lambda o, n: out[:len(out) - 1][o:o + n], 7) is None   # truncated: not a short region
    assert read_region(lambda o, n: None, 0) is None                           # no such file
    many = [bytes([r]) * 10 for r in range(40)]   # an index past the first read (R > 32): read whole, once more
    big = pack_map_output(many)
    for r in (0, 31, 32, 39):
        got = read_region(lambda o, n: big[o:o + n], r)
        assert got is not None and scan_records(got[0]).records == [many[r]]


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

"""The GFS master's operation log and checkpoints (Ghemawat et al., SOSP
2003, section 2.6.3): a restart loads a checkpoint and replays the records
after it, reaching the state the master had."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core import decode, encode
from synod.core.errors import LocalProtocolError
from synod.gfs import Status
from synod.gfs._metadata import Metadata
from synod.gfs.messages import (
    AddChunk,
    Checkpoint,
    CopyChunk,
    CreateFile,
    DeleteFile,
    FileRecord,
    Mkdirs,
    RemoveHidden,
    Rename,
    SetChunkVersion,
    Snapshot,
    Undelete,
)

PATHS = ["/a", "/a/b", "/a/b/c", "/a/d", "/e", "/e/f"]


@st.composite
def _records(draw: st.DrawFn) -> list:
    out = []
    handle = 1
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["mkdirs", "create", "delete", "undelete", "remove", "add", "version",
                                     "snapshot", "copy", "rename"]))
        path = draw(st.sampled_from(PATHS))
        if kind == "mkdirs":
            out.append(Mkdirs(path=path))
        elif kind == "create":
            out.append(CreateFile(path=path, replication=draw(st.integers(0, 4))))
        elif kind == "delete":
            out.append(DeleteFile(path=path, now_ms=draw(st.integers(0, 3))))
        elif kind in ("undelete", "remove"):
            out.append(("hidden", kind, path))   # resolved against the state when applied
        elif kind == "add":
            out.append(AddChunk(path=path, handle=handle))
            handle += 1
        elif kind == "rename":
            out.append(Rename(src=path, dst=draw(st.sampled_from(PATHS + ["/r", "/r/s/t"])),
                              now_ms=draw(st.integers(0, 3))))
        elif kind == "snapshot":
            out.append(Snapshot(src=path, dst=draw(st.sampled_from(["/s", "/s/t", "/e/s"]))))
        elif kind == "copy":
            out.append(CopyChunk(path=path, index=draw(st.integers(0, 2)), new_handle=handle))
            handle += 1
        else:
            out.append(SetChunkVersion(handle=draw(st.integers(1, handle)), version=draw(st.integers(1, 5))))
    return out


def _resolve(md: Metadata, record: object) -> object:
    if not isinstance(record, tuple):
        return record
    _, kind, path = record
    hidden = [p for p, m in md.namespace.files() if m.deleted_at_ms is not None]
    if not hidden:
        return Mkdirs(path=path)
    if kind == "undelete":
        return Undelete(hidden=hidden[0], path=hidden[0].rpartition("/")[0] + "/back")
    return RemoveHidden(hidden=hidden[0])


@settings(max_examples=300, deadline=None)
@given(_records(), st.data())
def test_a_checkpoint_and_the_records_after_it_give_the_masters_state(records: list, data: st.DataObject) -> None:
    live = Metadata()
    applied = []
    cut = data.draw(st.integers(0, len(records)))
    cp = live.checkpoint()
    for i, raw in enumerate(records):
        if i == cut:
            cp = live.checkpoint()
        record = _resolve(live, raw)
        before = live.checkpoint()
        if live.apply(live.lsn + 1, record) != Status.OK:
            assert live.checkpoint() == before   # a failed mutation changes nothing and is not logged
            continue
        applied.append(record)
    if cut == len(records):
        cp = live.checkpoint()
    # Through the wire format, as on disk.
    restored = Metadata.restore(decode(encode(cp), Checkpoint))
    for lsn in range(cp.lsn + 1, live.lsn + 1):
        restored.replay(lsn, applied[lsn - 1])
    assert restored.checkpoint() == live.checkpoint()
    # Reference counts kept along the way equal those counted from scratch.
    assert restored.refs == live.refs == Metadata.restore(live.checkpoint()).refs
    assert set(live.refs) == set(live.chunks.handles())


def test_records_apply_in_lsn_order_only_and_a_log_that_does_not_fit_is_refused() -> None:
    md = Metadata()
    md.apply(1, Mkdirs(path="/a"))
    with pytest.raises(LocalProtocolError):
        md.apply(3, Mkdirs(path="/b"))
    with pytest.raises(LocalProtocolError):
        md.apply(1, Mkdirs(path="/b"))
    with pytest.raises(ValueError):
        md.replay(2, Mkdirs(path="/a"))   # it exists: this record was not logged against this state
    assert md.lsn == 1


def test_chunks_follow_their_file_into_deletion_and_out_of_the_table() -> None:
    md = Metadata()
    for lsn, record in enumerate([CreateFile(path="/f", replication=3), AddChunk(path="/f", handle=1),
                                  AddChunk(path="/f", handle=2), SetChunkVersion(handle=2, version=4),
                                  DeleteFile(path="/f", now_ms=10)], start=1):
        assert md.apply(lsn, record) == Status.OK
    hidden = md.namespace.files()[0][0]
    assert md.apply(6, AddChunk(path=hidden, handle=3)) == Status.NOT_FOUND   # no new chunk for a deleted file
    assert md.apply(6, AddChunk(path="/g", handle=3)) == Status.NOT_FOUND
    assert md.apply(6, AddChunk(path="/f", handle=3)) == Status.NOT_FOUND     # its name is hidden now
    assert md.apply(6, CreateFile(path="/g", replication=0)) == Status.BAD_ARGUMENT
    assert md.apply(6, SetChunkVersion(handle=2, version=4)) == Status.BAD_ARGUMENT   # never lowered or repeated
    assert md.lsn == 5 and md.chunks.get(2).version == 4
    assert md.apply(6, RemoveHidden(hidden=hidden)) == Status.OK
    assert len(md.chunks) == 0 and md.chunks.next_handle == 3   # handles are never reused


@pytest.mark.parametrize("bad", [
    Checkpoint(lsn=1, entries=(FileRecord(path="/a/b", is_dir=False, replication=3, chunk_handles=(),
                                          deleted_at_ms=None),), chunks=(), next_handle=1),
    Checkpoint(lsn=1, entries=(FileRecord(path="/a", is_dir=False, replication=3, chunk_handles=(1,),
                                          deleted_at_ms=None),), chunks=(), next_handle=2),
    Checkpoint(lsn=1, entries=(FileRecord(path="/a", is_dir=False, replication=3, chunk_handles=(1, 1),
                                          deleted_at_ms=None),), chunks=((1, 1),), next_handle=2),
    Checkpoint(lsn=1, entries=(), chunks=((1, 1),), next_handle=2),
    Checkpoint(lsn=1, entries=(), chunks=((5, 1),), next_handle=2),
    Checkpoint(lsn=-1, entries=(), chunks=(), next_handle=1),
    Checkpoint(lsn=1, entries=(FileRecord(path="/d", is_dir=True, replication=0, chunk_handles=(1,),
                                          deleted_at_ms=None),), chunks=((1, 1),), next_handle=2),
], ids=["orphan-entry", "unknown-chunk", "chunk-twice-in-a-file", "chunk-of-no-file", "handle-past-next",
        "negative-lsn", "directory-with-chunks"])
def test_a_checkpoint_that_is_not_one_is_refused(bad: Checkpoint) -> None:
    with pytest.raises(ValueError):
        Metadata.restore(bad)


def test_section_3_4_a_snapshot_shares_chunks_until_one_is_written() -> None:
    """A snapshot duplicates the metadata of the source; its files point at
    the same chunks, whose reference counts are then above one. Before a
    shared chunk is written, it is copied (CopyChunk) and the file that is
    written gets the copy; the other keeps the original."""
    md = Metadata()
    records = [CreateFile(path="/home/user/a", replication=3), AddChunk(path="/home/user/a", handle=1),
               AddChunk(path="/home/user/a", handle=2), SetChunkVersion(handle=1, version=5),
               Snapshot(src="/home/user", dst="/save/user")]
    for lsn, record in enumerate(records, start=1):
        assert md.apply(lsn, record) == Status.OK, record
    assert md.namespace.lookup("/save/user/a").chunk_handles == [1, 2]
    assert md.shared(1) and md.shared(2)
    assert md.apply(6, Snapshot(src="/home/user", dst="/save/user")) == Status.EXISTS
    assert md.apply(6, Snapshot(src="/home", dst="/home/inner")) == Status.BAD_PATH   # into itself
    assert md.apply(6, CopyChunk(path="/home/user/a", index=0, new_handle=3)) == Status.OK
    assert md.namespace.lookup("/home/user/a").chunk_handles == [3, 2]
    assert md.namespace.lookup("/save/user/a").chunk_handles == [1, 2]
    assert not md.shared(1) and not md.shared(3) and md.shared(2)
    assert md.chunks.get(3).version == 5          # a copy of the chunk as it was
    assert md.apply(7, CopyChunk(path="/save/user/a", index=0, new_handle=4)) == Status.BAD_ARGUMENT   # not shared
    # The chunks live while some file (hidden ones included) holds them.
    assert md.apply(7, DeleteFile(path="/save/user/a", now_ms=1)) == Status.OK
    hidden = next(p for p, m in md.namespace.files() if m.deleted_at_ms is not None)
    assert md.apply(8, RemoveHidden(hidden=hidden)) == Status.OK
    assert md.chunks.get(1) is None               # /save/user/a was its last holder
    assert md.chunks.get(2) is not None and not md.shared(2)
    restored = Metadata.restore(decode(encode(md.checkpoint()), Checkpoint))
    assert restored.refs == md.refs


def test_rename_replaces_a_file_and_keeps_the_old_one_hidden() -> None:
    """MapReduce commits its output by an atomic rename (OSDI 2004, 3.3): the
    file keeps its chunks under the new name; a file there is deleted (4.4)."""
    md = Metadata()
    records = [CreateFile(path="/out/tmp-1", replication=3), AddChunk(path="/out/tmp-1", handle=1),
               CreateFile(path="/out/final", replication=3), AddChunk(path="/out/final", handle=2)]
    for lsn, r in enumerate(records, start=1):
        assert md.apply(lsn, r) == Status.OK
    assert md.apply(5, Rename(src="/out/tmp-1", dst="/out/final", now_ms=7)) == Status.OK
    assert md.namespace.lookup("/out/tmp-1") is None
    assert md.namespace.lookup("/out/final").chunk_handles == [1]
    hidden = [p for p, m in md.namespace.files() if m.deleted_at_ms == 7]
    assert len(hidden) == 1 and md.namespace.lookup(hidden[0]).chunk_handles == [2]
    assert md.apply(6, Rename(src="/out", dst="/elsewhere", now_ms=8)) == Status.IS_A_DIRECTORY
    assert md.apply(6, Rename(src="/nope", dst="/x", now_ms=8)) == Status.NOT_FOUND
    assert md.apply(6, Rename(src="/out/final", dst="/out/.deleted-1-x", now_ms=8)) == Status.BAD_PATH
    assert md.apply(6, Rename(src="/out/final", dst="/new/dir/f", now_ms=8)) == Status.OK   # parents made
    assert md.namespace.lookup("/new/dir").is_dir

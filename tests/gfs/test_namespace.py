"""The GFS master's namespace and locks (Ghemawat et al., SOSP 2003,
sections 4.1 and 4.4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core.errors import LocalProtocolError
from synod.gfs import LockTable, Namespace, Status, check_path, lock_set, snapshot_lock_set


def test_paths_are_full_pathnames() -> None:
    assert check_path("/") is None
    assert check_path("/home/user/foo") is None
    for bad in ("home", "", "/home/", "/a//b", "/a/./b", "/a/../b", "/a\x00b", 7, "/" + "x" * 5000):
        assert check_path(bad) is not None, bad


def test_section_4_1_lock_sets() -> None:
    """'/d1/d2/.../dn/leaf': read locks on /d1, /d1/d2, ..., /d1/.../dn and a
    read or write lock on the full pathname."""
    assert lock_set("/home/user/foo", write=True) == (("/home", "/home/user"), ("/home/user/foo",))
    assert lock_set("/home/user/foo", write=False) == (("/home", "/home/user", "/home/user/foo"), ())
    assert lock_set("/save", write=True) == ((), ("/save",))


def test_section_4_1_snapshot_and_creation_are_serialized_creations_are_not() -> None:
    """The paper's example: snapshotting /home/user to /save/user takes read
    locks on /home and /save and write locks on /home/user and /save/user;
    creating /home/user/foo takes read locks on /home and /home/user and a
    write lock on /home/user/foo: they conflict on /home/user. Two creations
    in one directory do not conflict."""
    locks = LockTable()
    snap_reads, snap_writes = snapshot_lock_set("/home/user", "/save/user")
    assert (snap_reads, snap_writes) == (("/home", "/save"), ("/home/user", "/save/user"))
    assert locks.acquire(1, snap_reads, snap_writes)
    assert not locks.acquire(2, *lock_set("/home/user/foo", write=True))
    assert locks.acquire(3, *lock_set("/home/other/a", write=True))
    assert locks.acquire(4, *lock_set("/home/other/b", write=True))   # same directory, concurrent
    assert locks.release(1) == [2]
    assert locks.holds(2)


def test_waiters_are_granted_in_order_so_a_writer_is_not_starved() -> None:
    locks = LockTable()
    assert locks.acquire(1, ("/d",), ())
    assert not locks.acquire(2, (), ("/d",))     # a writer waits for the reader
    assert not locks.acquire(3, ("/d",), ())     # a later reader waits behind the writer
    assert locks.release(1) == [2]
    assert locks.release(2) == [3]
    assert locks.release(3) == []


def test_a_waiter_can_withdraw_and_the_line_is_bounded() -> None:
    locks = LockTable(waiters_max=1)
    assert locks.acquire(1, (), ("/a",))
    assert not locks.acquire(2, (), ("/a",))
    assert locks.full
    with pytest.raises(LocalProtocolError):
        locks.acquire(3, (), ("/a",))
    with pytest.raises(LocalProtocolError):
        locks.acquire(1, (), ("/b",))
    assert locks.release(2) == []      # withdrawn
    assert locks.release(1) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/a", "/a/b", "/a/b/c", "/d", "/d/e"]), st.booleans(),
                          st.integers(0, 3)), min_size=1, max_size=30))
def test_no_two_holders_conflict_and_every_waiter_is_granted_in_the_end(ops: list) -> None:
    """Invariant of the lock table under any interleaving of acquires and
    releases: a name held for writing has no other holder; once everything
    is released, nobody waits."""
    locks = LockTable()
    held: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    waiting: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for op, (path, write, release_after) in enumerate(ops):
        sets = lock_set(path, write=write)
        if locks.acquire(op, *sets):
            held[op] = sets
        else:
            waiting[op] = sets
        if release_after == 0 and held:
            victim = min(held)
            del held[victim]
            for granted in locks.release(victim):
                held[granted] = waiting.pop(granted)
        _check_no_conflict(held)
    while held:
        victim = min(held)
        del held[victim]
        for granted in locks.release(victim):
            held[granted] = waiting.pop(granted)
        _check_no_conflict(held)
    assert waiting == {}


def _check_no_conflict(held: dict[int, tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
    for op, (_, writes) in held.items():
        for name in writes:
            for other, (r2, w2) in held.items():
                assert other == op or (name not in r2 and name not in w2), (op, other, name)


def test_creation_makes_missing_directories_and_refuses_what_is_in_the_way() -> None:
    ns = Namespace()
    assert ns.create_file("/home/user/foo", replication=3) == Status.OK
    assert ns.lookup("/home").is_dir and ns.lookup("/home/user").is_dir
    assert ns.create_file("/home/user/foo", replication=3) == Status.EXISTS
    assert ns.create_file("/home/user/foo/bar", replication=3) == Status.NOT_A_DIRECTORY
    assert ns.create_file("/home/", replication=3) == Status.BAD_PATH
    assert ns.mkdirs("/home/user") == Status.EXISTS
    assert ns.mkdirs("/home/user/foo/x") == Status.NOT_A_DIRECTORY
    assert ns.list("/home/user") == (Status.OK, ["foo"])
    assert ns.list("/home/user/foo")[0] == Status.NOT_A_DIRECTORY
    assert ns.list("/nowhere")[0] == Status.NOT_FOUND


def test_section_4_4_deletion_hides_then_reclaims_and_can_be_undone() -> None:
    """A deleted file is renamed to a hidden name with the deletion
    timestamp; it can be read and undeleted under it; the regular scan
    removes it after the interval, its chunks becoming orphans."""
    ns = Namespace()
    ns.create_file("/logs/a", replication=3)
    ns.lookup("/logs/a").chunk_handles.extend([7, 8])
    status, hidden = ns.delete("/logs/a", now_ms=1_000)
    assert status == Status.OK and hidden is not None
    assert ns.lookup("/logs/a") is None
    assert ns.lookup(hidden).deleted_at_ms == 1_000
    assert ns.list("/logs") == (Status.OK, [])
    assert ns.list("/logs", include_hidden=True) == (Status.OK, [hidden.rpartition("/")[2]])
    assert ns.undelete(hidden, "/logs/a") == Status.OK
    assert ns.lookup("/logs/a").chunk_handles == [7, 8]
    _, hidden = ns.delete("/logs/a", now_ms=2_000)
    assert hidden is not None
    assert ns.expired_hidden(now_ms=2_000 + 999, interval_ms=1_000) == []
    assert ns.expired_hidden(now_ms=3_000, interval_ms=1_000) == [hidden]
    assert ns.remove_hidden(hidden) == [7, 8]
    assert ns.lookup(hidden) is None


def test_directories_are_removed_only_when_empty() -> None:
    ns = Namespace()
    ns.create_file("/d/f", replication=1)
    assert ns.delete("/d", now_ms=0) == (Status.NOT_EMPTY, None)
    ns.delete("/d/f", now_ms=0)
    assert ns.delete("/d", now_ms=0)[0] == Status.NOT_EMPTY   # the hidden file is still in it
    for hidden in ns.expired_hidden(now_ms=10, interval_ms=0):
        ns.remove_hidden(hidden)
    assert ns.delete("/d", now_ms=0) == (Status.OK, None)
    assert ns.delete("/", now_ms=0)[0] == Status.BAD_PATH


def test_the_table_is_bounded() -> None:
    ns = Namespace(entries_max=3)   # the root, /a, /a/b
    assert ns.create_file("/a/b", replication=1) == Status.OK
    assert ns.create_file("/a/c", replication=1) == Status.FULL
    assert ns.lookup("/a/c") is None


def test_section_3_4_a_snapshot_copies_a_tree_without_its_hidden_files() -> None:
    ns = Namespace()
    ns.create_file("/home/user/a", replication=3)
    ns.lookup("/home/user/a").chunk_handles.append(1)
    ns.create_file("/home/user/sub/b", replication=2)
    ns.create_file("/home/user/gone", replication=1)
    ns.delete("/home/user/gone", now_ms=5)
    status, copies = ns.copy_tree("/home/user", "/save/user")
    assert status == Status.OK
    assert [(p, m.chunk_handles) for p, m in ns.files() if p.startswith("/save")] == [
        ("/save/user/a", [1]), ("/save/user/sub/b", [])]
    assert len(copies) == 2
    assert ns.copy_tree("/home/user", "/save/user")[0] == Status.EXISTS
    assert ns.copy_tree("/nowhere", "/x")[0] == Status.NOT_FOUND
    assert ns.copy_tree("/home", "/home/user/x")[0] == Status.BAD_PATH
    assert ns.copy_tree("/home/user/a", "/home/user/a/b")[0] == Status.BAD_PATH

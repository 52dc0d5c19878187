"""synod.zk.watches: ZooKeeper's watch semantics (Hunt et al. section 2.2;
ZooKeeper 3.6+'s WatchManager, persistent watches of ZOOKEEPER-1416)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from synod.zk.constants import AddWatchMode, EventType, KeeperState, WatcherType
from synod.zk.messages import WatcherEvent
from synod.zk.watches import WatchManager, parent_path


def ev(type_: EventType, path: str) -> WatcherEvent:
    return WatcherEvent(type_=int(type_), state=int(KeeperState.SyncConnected), path=path)


def test_parent_path() -> None:
    assert parent_path("/a") == "/"
    assert parent_path("/a/b/c") == "/a/b"


def test_data_watch_is_one_shot() -> None:
    """Section 2.2: watches are one-time triggers."""
    w = WatchManager()
    w.add_data_watch("/a", 7)
    assert w.node_data_changed("/a") == [(7, ev(EventType.NodeDataChanged, "/a"))]
    assert w.node_data_changed("/a") == []
    assert w.count() == 0


def test_exists_watch_on_missing_node_fires_on_create() -> None:
    w = WatchManager()
    w.add_data_watch("/a", 1)  # exists("/a", watch) on a missing node
    assert w.node_created("/a") == [(1, ev(EventType.NodeCreated, "/a"))]


def test_child_watch_fires_on_child_create_with_parent_path() -> None:
    w = WatchManager()
    w.add_child_watch("/a", 1)
    w.add_data_watch("/a/b", 2)
    assert w.node_created("/a/b") == [(2, ev(EventType.NodeCreated, "/a/b")),
                                      (1, ev(EventType.NodeChildrenChanged, "/a"))]


def test_delete_tells_a_watcher_once_and_fires_the_parent() -> None:
    """A session with both a data and a child watch on a deleted node gets one
    NodeDeleted (ZooKeeper suppresses the child table's for it); both go."""
    w = WatchManager()
    w.add_data_watch("/a/b", 1)
    w.add_child_watch("/a/b", 1)
    w.add_child_watch("/a/b", 2)
    w.add_child_watch("/a", 3)
    assert w.node_deleted("/a/b") == [(1, ev(EventType.NodeDeleted, "/a/b")), (2, ev(EventType.NodeDeleted, "/a/b")),
                                      (3, ev(EventType.NodeChildrenChanged, "/a"))]
    assert w.count() == 0


def test_watchers_are_told_in_the_order_they_set_the_watch() -> None:
    w = WatchManager()
    for watcher in (5, 3, 9):
        w.add_data_watch("/x", watcher)
    assert [who for who, _ in w.node_data_changed("/x")] == [5, 3, 9]


def test_persistent_watch_stays_and_ignores_descendants() -> None:
    w = WatchManager()
    w.add_watch("/a", 1, AddWatchMode.persistent)
    for _ in range(3):
        assert w.node_data_changed("/a") == [(1, ev(EventType.NodeDataChanged, "/a"))]
    assert w.node_created("/a/b") == [(1, ev(EventType.NodeChildrenChanged, "/a"))]
    assert w.node_data_changed("/a/b") == []
    assert w.check_watches("/a", WatcherType.Persistent, 1)
    assert w.check_watches("/a", WatcherType.Data, 1)  # a table, any mode (ZooKeeper 3.8)
    assert not w.check_watches("/a", WatcherType.PersistentRecursive, 1)


def test_recursive_watch_sees_descendants_but_not_child_changes() -> None:
    w = WatchManager()
    w.add_watch("/a", 1, AddWatchMode.persistentRecursive)
    assert w.node_created("/a/b/c") == [(1, ev(EventType.NodeCreated, "/a/b/c"))]
    assert w.node_data_changed("/a") == [(1, ev(EventType.NodeDataChanged, "/a"))]
    assert w.node_deleted("/a/b/c") == [(1, ev(EventType.NodeDeleted, "/a/b/c"))]
    assert w.node_created("/other") == []
    assert w.count() == 2  # in both tables, as ZooKeeper 3.8
    assert w.check_watches("/a", WatcherType.Children, 1)


def test_the_last_mode_set_wins() -> None:
    """ZooKeeper 3.8 (seen by the differential test): a one-shot watch set
    after a persistent one on the same path replaces it, table by table."""
    w = WatchManager()
    w.add_watch("/a", 1, AddWatchMode.persistent)
    w.add_data_watch("/a", 1)
    assert w.node_data_changed("/a") == [(1, ev(EventType.NodeDataChanged, "/a"))]
    assert w.node_data_changed("/a") == []
    assert w.node_created("/a/b") == [(1, ev(EventType.NodeChildrenChanged, "/a"))]  # the child table's stays
    assert w.node_created("/a/c") == [(1, ev(EventType.NodeChildrenChanged, "/a"))]
    w.add_watch("/a", 1, AddWatchMode.persistent)
    assert w.node_data_changed("/a") == [(1, ev(EventType.NodeDataChanged, "/a"))]
    assert w.node_data_changed("/a") == [(1, ev(EventType.NodeDataChanged, "/a"))]


def test_remove_and_check_watches_by_type() -> None:
    """removeWatches answers NOWATCHER (False) when there is none of the type."""
    w = WatchManager()
    w.add_data_watch("/a", 1)
    w.add_child_watch("/a", 1)
    assert w.check_watches("/a", WatcherType.Any, 1)
    assert not w.remove_watches("/a", WatcherType.Persistent, 1)
    assert w.remove_watches("/a", WatcherType.Children, 1)
    assert not w.check_watches("/a", WatcherType.Children, 1)
    assert w.check_watches("/a", WatcherType.Data, 1)
    assert w.remove_watches("/a", WatcherType.Any, 1)
    assert not w.remove_watches("/a", WatcherType.Any, 1)
    w.add_watch("/r", 2, AddWatchMode.persistentRecursive)
    assert w.remove_watches("/r", WatcherType.PersistentRecursive, 2)
    assert w.node_created("/r/x") == []


def test_remove_watcher_forgets_a_session() -> None:
    w = WatchManager()
    w.add_data_watch("/a", 1)
    w.add_child_watch("/b", 1)
    w.add_watch("/c", 1, AddWatchMode.persistentRecursive)
    w.add_data_watch("/a", 2)
    w.remove_watcher(1)
    assert w.count() == 1
    assert w.node_data_changed("/a") == [(2, ev(EventType.NodeDataChanged, "/a"))]


def test_watches_max_refuses_more() -> None:
    w = WatchManager(watches_max=2)
    assert w.add_data_watch("/a", 1)
    assert w.add_child_watch("/a", 1)
    assert not w.add_data_watch("/b", 1)
    assert not w.add_watch("/b", 1, AddWatchMode.persistent)


_paths = st.sampled_from(["/a", "/a/b", "/a/b/c", "/d"])
_actions = st.lists(st.tuples(st.sampled_from(["data", "child", "set", "create", "delete"]), _paths,
                              st.integers(0, 3)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_actions)
def test_each_one_shot_watch_fires_at_most_once(actions: list[tuple[str, str, int]]) -> None:
    """Against a model: a one-shot watch set once fires at most once, and
    fires on the first event of its kind at its path."""
    w = WatchManager()
    pending: set[tuple[str, str, int]] = set()  # (table, path, watcher)
    for action, path, watcher in actions:
        if action in ("data", "child"):
            (w.add_data_watch if action == "data" else w.add_child_watch)(path, watcher)
            pending.add((action, path, watcher))
            continue
        fired = {"set": w.node_data_changed, "create": w.node_created, "delete": w.node_deleted}[action](path)
        told = [(who, e.path) for who, e in fired]
        assert len(told) == len(set(told)), "a watcher told twice of one change"
        expect = {("data", path)}
        if action in ("create", "delete"):
            expect.add(("child", parent_path(path)))
        if action == "delete":
            expect.add(("child", path))
        gone = {p for p in pending if (p[0], p[1]) in expect}
        assert {(who, at) for who, at in told} == {(p[2], p[1] if not (p[0] == "child" and p[1] == path
                                                                      and action == "delete") else path)
                                                    for p in gone}
        pending -= gone
    assert w.count() == len(pending)

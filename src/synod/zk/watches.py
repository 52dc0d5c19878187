"""ZooKeeper's watch manager: who is told when a znode changes.

Theory of operation (Hunt et al., USENIX ATC 2010, section 2.2; ZooKeeper
3.6+'s ``WatchManager`` and ``DataTree``). A server keeps two tables, as
ZooKeeper's DataTree does: *data watches* (left by getData and exists,
which may name a missing node: its creation fires the watch) and *child
watches* (left by getChildren). A watcher is an opaque hashable (the server
uses the session id). Each (watcher, path) has one mode in each table, the last one set:

STANDARD
    one-shot: removed when it fires, so it fires at most once.
PERSISTENT (addWatch mode 0)
    stays; in both tables, fires for the path's own events.
PERSISTENT_RECURSIVE (addWatch mode 1)
    stays; in both tables (so removeWatches of Children finds it, as in
    ZooKeeper 3.8), fires for the path and every descendant, for every
    event but NodeChildrenChanged, once per change.

The tree calls one trigger per change, as DataTree does:

========== =============================================================
create     data table: NodeCreated at path; child table: NodeChildrenChanged
           at the parent
delete     data table: NodeDeleted at path; child table: NodeDeleted at path
           (not to a watcher just told by the data table); child table:
           NodeChildrenChanged at the parent
setData    data table: NodeDataChanged at path
========== =============================================================

A trigger tells each watcher at most once, in the order the watches were
set (ZooKeeper uses a hash set; insertion order makes it deterministic).
Events carry the changed node's path and state SyncConnected. A watcher
without READ permission on the node whose ACL goes with the event (the
node created, deleted or changed; the parent for NodeChildrenChanged) is
not told, though its one-shot watch is spent (ZooKeeper 3.7+'s
ServerCnxn.process(event, znodeAcl)); ``may_read`` decides, and tells
everyone if not given.

Invariant: a watcher's mode at a path appears in ``_modes`` exactly when the
watcher is in that path's table entry.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from enum import IntEnum

from synod.zk.constants import AddWatchMode, EventType, KeeperState, WatcherType
from synod.zk.messages import ACL, WatcherEvent

__all__ = ["WatchMode", "WatchTable", "WatchManager", "Fired", "MayRead", "parent_path", "WATCHES_MAX"]

# Watches one server keeps, all tables and modes together; an add past it is
# refused (add_* return False) rather than growing without bound.
WATCHES_MAX = 1_000_000

Fired = tuple[Hashable, WatcherEvent]
# (watcher, the changed node's ACL) -> may it be told (READ permission).
MayRead = Callable[[Hashable, Sequence[ACL]], bool]


class WatchMode(IntEnum):
    """ZooKeeper's WatcherMode."""

    STANDARD = 0
    PERSISTENT = 1
    PERSISTENT_RECURSIVE = 2


def parent_path(path: str) -> str:
    """``/a/b`` -> ``/a``; ``/a`` -> ``/``. ``/`` has no parent."""
    assert path != "/"
    head = path.rsplit("/", 1)[0]
    return head or "/"


def _self_and_ancestors(path: str) -> Iterator[str]:
    yield path
    while path != "/":
        path = parent_path(path)
        yield path


class WatchTable:
    """One of the two tables (ZooKeeper's WatchManager): path -> watchers in
    the order set, with a mode per (watcher, path)."""

    def __init__(self) -> None:
        self._table: dict[str, dict[Hashable, WatchMode]] = {}
        self._recursive_count = 0  # PERSISTENT_RECURSIVE entries, to skip the ancestor walk when 0

    def __len__(self) -> int:
        return sum(len(w) for w in self._table.values())

    def add(self, path: str, watcher: Hashable, mode: WatchMode) -> None:
        """Set a watch. The last mode set wins, so a getData with watch after
        an addWatch turns the persistent watch into a one-shot one, as
        ZooKeeper 3.8's WatcherModeManager does (3.9 keeps both, ZOOKEEPER-4466)."""
        entry = self._table.setdefault(path, {})
        old = entry.get(watcher)
        if old == WatchMode.PERSISTENT_RECURSIVE:
            self._recursive_count -= 1
        if mode == WatchMode.PERSISTENT_RECURSIVE:
            self._recursive_count += 1
        entry[watcher] = mode

    def watchers(self, path: str) -> list[Hashable]:
        """The watchers with a watch at path, in the order set."""
        return list(self._table.get(path, ()))

    def mode(self, path: str, watcher: Hashable) -> WatchMode | None:
        return self._table.get(path, {}).get(watcher)

    def remove(self, path: str, watcher: Hashable, modes: tuple[WatchMode, ...]) -> bool:
        """Drop the watcher's watch at path if its mode is one of ``modes``."""
        entry = self._table.get(path)
        if entry is None or entry.get(watcher) not in modes:
            return False
        if entry.pop(watcher) == WatchMode.PERSISTENT_RECURSIVE:
            self._recursive_count -= 1
        if not entry:
            del self._table[path]
        return True

    def remove_watcher(self, watcher: Hashable) -> None:
        for path in [p for p, entry in self._table.items() if watcher in entry]:
            self.remove(path, watcher, tuple(WatchMode))

    def paths(self, watcher: Hashable) -> list[str]:
        return [p for p, entry in self._table.items() if watcher in entry]

    def trigger(self, path: str, event_type: EventType, suppress: frozenset[Hashable] = frozenset()) -> list[Hashable]:
        """The watchers told of ``event_type`` at ``path``, once each, in order;
        one-shot watches at path are removed (suppressed ones too, as ZooKeeper
        does)."""
        if not self._table:
            return []
        told: dict[Hashable, None] = {}
        ancestors = _self_and_ancestors(path) if self._recursive_count else iter((path,))
        for at in ancestors:
            entry = self._table.get(at)
            if not entry:
                continue
            for watcher, mode in list(entry.items()):
                if mode == WatchMode.PERSISTENT_RECURSIVE:
                    if event_type != EventType.NodeChildrenChanged:
                        told[watcher] = None
                elif at == path:
                    told[watcher] = None
                    if mode == WatchMode.STANDARD:
                        self.remove(at, watcher, (WatchMode.STANDARD,))
        return [w for w in told if w not in suppress]


class WatchManager:
    """The server's data and child watch tables (ZooKeeper's DataTree's
    ``dataWatches`` and ``childWatches``) and the triggers the tree calls."""

    def __init__(self, watches_max: int = WATCHES_MAX, may_read: MayRead | None = None) -> None:
        assert watches_max > 0
        self.data = WatchTable()
        self.child = WatchTable()
        self.watches_max = watches_max
        self.may_read = may_read

    def count(self) -> int:
        return len(self.data) + len(self.child)

    def _room(self) -> bool:
        return self.count() < self.watches_max

    # -- setting watches ---------------------------------------------------------------------------

    def add_data_watch(self, path: str, watcher: Hashable) -> bool:
        """getData/exists with watch=true (exists may name a missing node)."""
        if not self._room():
            return False
        self.data.add(path, watcher, WatchMode.STANDARD)
        return True

    def add_child_watch(self, path: str, watcher: Hashable) -> bool:
        """getChildren/getChildren2 with watch=true."""
        if not self._room():
            return False
        self.child.add(path, watcher, WatchMode.STANDARD)
        return True

    def add_watch(self, path: str, watcher: Hashable, mode: int) -> bool:
        """addWatch (op 106): ``mode`` an :class:`~synod.zk.constants.AddWatchMode`."""
        if not self._room():
            return False
        assert mode in (AddWatchMode.persistent, AddWatchMode.persistentRecursive), mode
        watch_mode = WatchMode.PERSISTENT_RECURSIVE if mode == AddWatchMode.persistentRecursive else WatchMode.PERSISTENT
        self.data.add(path, watcher, watch_mode)
        self.child.add(path, watcher, watch_mode)
        return True

    def _tables(self, watcher_type: int) -> list[tuple[WatchTable, tuple[WatchMode, ...]]]:
        # Children and Data name a table, whatever the watch's mode
        # (ZooKeeper 3.8's DataTree.removeWatch / containsWatcher).
        if watcher_type == WatcherType.Children:
            return [(self.child, tuple(WatchMode))]
        if watcher_type == WatcherType.Data:
            return [(self.data, tuple(WatchMode))]
        if watcher_type == WatcherType.Persistent:
            return [(self.data, (WatchMode.PERSISTENT,)), (self.child, (WatchMode.PERSISTENT,))]
        if watcher_type == WatcherType.PersistentRecursive:
            return [(self.data, (WatchMode.PERSISTENT_RECURSIVE,)), (self.child, (WatchMode.PERSISTENT_RECURSIVE,))]
        assert watcher_type == WatcherType.Any, watcher_type
        return [(self.data, tuple(WatchMode)), (self.child, tuple(WatchMode))]

    def remove_watches(self, path: str, watcher_type: int, watcher: Hashable) -> bool:
        """removeWatches (op 18): False if there was none of that type
        (the server answers NOWATCHER)."""
        removed = False
        for table, modes in self._tables(watcher_type):
            removed = table.remove(path, watcher, modes) or removed
        return removed

    def check_watches(self, path: str, watcher_type: int, watcher: Hashable) -> bool:
        """checkWatches (op 17): does the watcher have a watch of that type
        here. (ZooKeeper 3.8's WatchManager.containsWatcher answers yes when
        any session has a watch at the path, a bug; this answers for the
        watcher asked about.) ZooKeeper 3.8 takes only Children, Data and Any
        here and in :meth:`remove_watches` (MARSHALLINGERROR for the others);
        Persistent and PersistentRecursive are 3.9's."""
        return any(table.mode(path, watcher) in modes for table, modes in self._tables(watcher_type))

    def remove_watcher(self, watcher: Hashable) -> None:
        """Forget every watch of a closed session."""
        self.data.remove_watcher(watcher)
        self.child.remove_watcher(watcher)

    # -- triggers (called by the tree) -------------------------------------------------------------

    def _events(self, watchers: list[Hashable], event_type: EventType, path: str,
                acl: Sequence[ACL]) -> list[Fired]:
        if not watchers:
            return []
        event = WatcherEvent(type_=int(event_type), state=int(KeeperState.SyncConnected), path=path)
        return [(w, event) for w in watchers if self.may_read is None or self.may_read(w, acl)]

    def node_created(self, path: str, acl: Sequence[ACL] = (), parent_acl: Sequence[ACL] = ()) -> list[Fired]:
        """A create: ``acl`` the new node's, ``parent_acl`` its parent's."""
        fired = self._events(self.data.trigger(path, EventType.NodeCreated), EventType.NodeCreated, path, acl)
        parent = parent_path(path)
        changed = self.child.trigger(parent, EventType.NodeChildrenChanged)
        return fired + self._events(changed, EventType.NodeChildrenChanged, parent, parent_acl)

    def node_deleted(self, path: str, acl: Sequence[ACL] = (), parent_acl: Sequence[ACL] = ()) -> list[Fired]:
        """A delete: ``acl`` the deleted node's, ``parent_acl`` its parent's."""
        told = self.data.trigger(path, EventType.NodeDeleted)
        told_child = self.child.trigger(path, EventType.NodeDeleted, suppress=frozenset(told))
        fired = self._events(told + told_child, EventType.NodeDeleted, path, acl)
        parent = parent_path(path)
        changed = self.child.trigger(parent, EventType.NodeChildrenChanged)
        return fired + self._events(changed, EventType.NodeChildrenChanged, parent, parent_acl)

    def node_data_changed(self, path: str, acl: Sequence[ACL] = ()) -> list[Fired]:
        return self._events(self.data.trigger(path, EventType.NodeDataChanged), EventType.NodeDataChanged, path,
                            acl)

"""One PySyncObj member holding a replicated dict (``ReplDict``), served to
benchmarks/kv_throughput.py's load generator over a minimal RESP subset.

Commands (RESP2 arrays of bulk strings, one reply each, in order):

- ``SET key value``: ``ReplDict.set`` through PySyncObj's Raft log; ``+OK``
  once it is applied here, ``-ERR <FAIL_REASON>`` otherwise. Called with a
  callback (never ``sync=True``), so commands from all connections queue up
  together and the leader batches them into its AppendEntries.
- ``GET key``: a LOCAL read of this member's dict: no ReadIndex and no lease
  check, so a read on a deposed leader can be stale. PySyncObj offers no
  linearizable read; the benchmark says so beside its figures.
- ``PING``; ``INFO [section]``: ``raft_role`` (leader/follower/candidate),
  ``raft_leader`` (host:port of the PySyncObj leader, empty if none) and
  ``raft_term``, in the ``field:value`` lines of synod's ``INFO replication``.

PySyncObj's defaults otherwise (``SyncObjConf()``): no journal file, so the
log lives in memory and nothing is fsynced; ``--unbatched`` sets
``appendEntriesUseBatch=False`` (each command its own AppendEntries).

Usage: python benchmarks/_pysyncobj_server.py --self 127.0.0.1:P --partners 127.0.0.1:Q,127.0.0.1:R
--resp-port N [--unbatched]
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj.batteries import ReplDict

ROLE_NAMES = {0: "follower", 1: "candidate", 2: "leader"}  # pysyncobj's _RAFT_STATE
FAIL_NAMES = {v: k for k, v in vars(FAIL_REASON).items() if k.isupper()}
ARGS_MAX = 16            # a command of more arguments is refused (the subset has at most 3)
BULK_BYTES_MAX = 1 << 20  # nor a bulk string larger than this


class ProtocolError(Exception):
    """The client sent something outside the RESP subset."""


async def read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One RESP array of bulk strings, or None at end of stream."""
    line = await reader.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        raise ProtocolError(f"expected an array, got {line[:20]!r}")
    n = int(line[1:])
    if not 0 < n <= ARGS_MAX:
        raise ProtocolError(f"array of {n} items")
    args = []
    for _ in range(n):
        head = await reader.readline()
        if not head.startswith(b"$"):
            raise ProtocolError(f"expected a bulk string, got {head[:20]!r}")
        size = int(head[1:])
        if not 0 <= size <= BULK_BYTES_MAX:
            raise ProtocolError(f"bulk string of {size} bytes")
        args.append((await reader.readexactly(size + 2))[:-2])
    return args


def bulk(data: bytes | None) -> bytes:
    return b"$-1\r\n" if data is None else b"$%d\r\n%s\r\n" % (len(data), data)


class Front:
    """The RESP front of one member: ``SyncObj`` ticks in its own thread
    (``autoTick``); its apply callbacks hop back to the event loop."""

    def __init__(self, self_addr: str, partners: list[str], unbatched: bool) -> None:
        self.data = ReplDict()
        conf = SyncObjConf(appendEntriesUseBatch=not unbatched)
        self.sync = SyncObj(self_addr, partners, conf=conf, consumers=[self.data])
        self.loop = asyncio.get_running_loop()

    async def set(self, key: bytes, value: bytes) -> bytes:
        done: asyncio.Future[int] = self.loop.create_future()

        def applied(_result: object, err: int) -> None:  # runs in SyncObj's tick thread
            self.loop.call_soon_threadsafe(lambda: done.done() or done.set_result(err))

        self.data.set(key, value, callback=applied)
        err = await done
        return b"+OK\r\n" if err == FAIL_REASON.SUCCESS else b"-ERR %s\r\n" % FAIL_NAMES.get(err, str(err)).encode()

    def info(self) -> bytes:
        status = self.sync.getStatus()
        leader = status["leader"]
        text = (f"# Replication\r\nraft_role:{ROLE_NAMES.get(status['state'], status['state'])}\r\n"
                f"raft_leader:{leader.address if leader is not None else ''}\r\nraft_term:{status['raft_term']}\r\n")
        return bulk(text.encode())

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (args := await read_command(reader)) is not None:
                name = args[0].upper()
                if name == b"SET" and len(args) == 3:
                    reply = await self.set(args[1], args[2])
                elif name == b"GET" and len(args) == 2:
                    reply = bulk(self.data.get(args[1]))
                elif name == b"PING":
                    reply = b"+PONG\r\n"
                elif name == b"INFO":
                    reply = self.info()
                else:
                    reply = b"-ERR unknown command or wrong number of arguments\r\n"
                writer.write(reply)
                await writer.drain()
        except (ProtocolError, ValueError) as e:
            writer.write(b"-ERR Protocol error: %s\r\n" % str(e).encode())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def main_async(args: argparse.Namespace) -> None:
    front = Front(args.self_addr, [p for p in args.partners.split(",") if p], args.unbatched)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        front.loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(front.serve, "127.0.0.1", args.resp_port)
    try:
        await stop.wait()
    finally:
        server.close()
        front.sync.destroy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--self", dest="self_addr", required=True, help="this member's Raft address, 127.0.0.1:PORT")
    ap.add_argument("--partners", required=True, help="the other members' Raft addresses, comma-separated")
    ap.add_argument("--resp-port", type=int, required=True, help="port of the RESP front on 127.0.0.1")
    ap.add_argument("--unbatched", action="store_true", help="appendEntriesUseBatch=False")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()

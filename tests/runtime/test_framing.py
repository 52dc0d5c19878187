"""Frames and envelopes on the wire (DESIGN.md sections 3 and 6)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core.codec import encode
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.runtime.framing import FrameBudget, FrameRefused, FrameSplitter, frame, open_envelope, pack_frame
from synod.runtime.messages import Faults, SetFaults
from synod.runtime.testing import Echo

MAX = 1024


def test_frame_round_trip_in_pieces() -> None:
    frames = pack_frame("n1", 5, Echo(text="a"), MAX) + pack_frame("n1", -5, Echo(text="b"), MAX)
    splitter = FrameSplitter(MAX)
    got = []
    for i in range(len(frames)):  # one byte at a time
        got += splitter.feed(frames[i : i + 1])
    assert [open_envelope(p, MAX) for p in got] == [("n1", 5, Echo(text="a")), ("n1", -5, Echo(text="b"))]
    assert splitter.buffered_bytes == 0


def test_oversize_frame_is_rejected_from_its_header() -> None:
    splitter = FrameSplitter(MAX)
    with pytest.raises(RemoteProtocolError, match="exceeds frame_size_bytes_max"):
        list(splitter.feed((MAX + 1).to_bytes(4, "big")))


def test_good_frames_before_a_bad_header_come_out_first() -> None:
    splitter = FrameSplitter(MAX)
    frames = splitter.feed(pack_frame("n1", 0, Echo(text="ok"), MAX) + (MAX + 1).to_bytes(4, "big"))
    assert open_envelope(next(frames), MAX)[2] == Echo(text="ok")
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        next(frames)


def test_sender_refuses_a_frame_the_receiver_would_reject() -> None:
    with pytest.raises(LocalProtocolError, match="over frame_size_bytes_max"):
        pack_frame("n1", 0, Echo(text="x" * MAX), MAX)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"\xc1\xff\x00garbage", "malformed frame"),
        (b"", "malformed frame"),
        (encode({"src": "n1"}), "envelope [src, corr, msg]: invalid frame: Expected `array`"),
        (encode(["n1", 0]), "envelope [src, corr, msg]: invalid frame: Expected `array` of length 3"),
        (encode(["", 0, Echo(text="a")]), "src must be"),
        (encode([7, 0, Echo(text="a")]), "Expected `str`, got `int` - at `$[0]`"),
        (encode(["x" * 300, 0, Echo(text="a")]), "src must be"),
        (encode(["n1", "0", Echo(text="a")]), "Expected `int`, got `str` - at `$[1]`"),
        (encode(["n1", True, Echo(text="a")]), "Expected `int`, got `bool` - at `$[1]`"),
        (encode(["n1", 2**63, Echo(text="a")]), "corr must be an int"),
        (encode(["n1", 0, {"text": "a"}]), "Expected `array`, got `object` - at `$[2]`"),
        (msgpack.packb(["n1", 0, ["runtime.test.Echo", 5]]), "runtime.test.Echo.text"),
        (msgpack.packb(["n1", 0, ["no.such.Tag"]]), "unknown message tag 'no.such.Tag'"),
        (msgpack.packb(["n1", 0, msgpack.ExtType(1, b"")]), "got `ext`"),
    ],
)
def test_bad_envelopes_raise_remote_protocol_error(payload: bytes, needle: str) -> None:
    with pytest.raises(RemoteProtocolError) as err:
        open_envelope(payload, MAX)
    assert needle in str(err.value)


def test_fault_values_from_the_wire_are_validated() -> None:
    bad = msgpack.packb(["c", 1, ["runtime.SetFaults", ["runtime.Faults", 2.0, 0.0, [], []]]])
    with pytest.raises(RemoteProtocolError, match="drop_probability"):
        open_envelope(bad, MAX)
    good = encode(["c", 1, SetFaults(faults=Faults(drop_probability=0.5, blocked_out=("n2",)))])
    assert open_envelope(good, MAX)[2].faults.blocked_out == ("n2",)


def test_partial_frames_reserve_their_length_from_the_budget_until_complete() -> None:
    """Issue 8 part 4: a frame's announced length is reserved once its header
    is in; small frames are free; the reservation ends with the frame."""
    budget = FrameBudget(1000, small_frame_bytes_max=100)
    a, b = FrameSplitter(MAX, budget), FrameSplitter(MAX, budget)
    assert list(a.feed((600).to_bytes(4, "big") + b"x" * 10)) == []
    assert (budget.bytes_reserved, a.pending_length, a.charged_bytes) == (600, 600, 600)
    with pytest.raises(FrameRefused, match="frame of 500 bytes refused: .* has 400 left"):
        list(b.feed((500).to_bytes(4, "big")))
    assert budget.refused == 1
    c = FrameSplitter(MAX, budget)
    assert list(c.feed((90).to_bytes(4, "big") + b"y")) == []  # small: not charged
    assert budget.bytes_reserved == 600
    assert list(a.feed(b"x" * 590)) == [b"x" * 600]
    assert (budget.bytes_reserved, a.pending_length) == (0, None)
    b.close()  # the transport closes a connection whose frame was refused
    assert budget.bytes_reserved == 0
    d = FrameSplitter(MAX, budget)
    list(d.feed((700).to_bytes(4, "big")))
    assert budget.bytes_reserved == 700
    d.close()  # the connection went away mid-frame
    d.close()
    assert budget.bytes_reserved == 0


def test_frame_bound_can_change_between_frames() -> None:
    """A connection allows only handshake-sized frames until authenticated."""
    splitter = FrameSplitter(16)
    frames = splitter.feed(frame(b"hello") + frame(b"z" * 100))
    assert next(frames) == b"hello"
    splitter.frame_size_bytes_max = MAX
    assert next(frames) == b"z" * 100


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=3 * FrameSplitter.STAGING_BYTES // 2), max_size=6), st.data())
def test_frames_of_any_size_come_out_whole_however_the_stream_is_cut(payloads: list[bytes],
                                                                      data: st.DataObject) -> None:
    """``feed`` and the in-place path (``get_buffer`` / ``buffer_updated``,
    as asyncio's BufferedProtocol and recv_into use it) cut the same stream,
    in pieces of any size, into the same payloads: small ones through the
    staging buffer, large ones received into a buffer of their own."""
    stream = b"".join(frame(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    fed = FrameSplitter(1 << 20)
    assert [bytes(p) for piece in pieces for p in fed.feed(piece)] == payloads
    in_place = FrameSplitter(1 << 20)
    got: list[bytes] = []
    for piece in pieces:
        view = memoryview(piece)
        while view:
            room = in_place.get_buffer()
            n = min(len(room), len(view), data.draw(st.integers(1, 1 << 17)))
            room[:n] = view[:n]
            view = view[n:]
            got += [bytes(p) for p in in_place.buffer_updated(n)]
    assert got == payloads
    assert fed.buffered_bytes == in_place.buffered_bytes == 0


def test_a_large_frame_is_received_into_its_own_buffer() -> None:
    body = b"x" * (FrameSplitter.DIRECT_FRAME_BYTES + 1)
    splitter = FrameSplitter(1 << 20)
    assert list(splitter.feed(frame(body)[:100])) == []
    room = splitter.get_buffer()
    assert len(room) == len(body) - 96        # exactly the rest of this frame's body
    room[:] = body[96:]
    (payload,) = list(splitter.buffer_updated(len(room)))
    assert payload == body and type(payload) is bytearray

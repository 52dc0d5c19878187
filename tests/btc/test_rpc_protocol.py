"""bitcoind's JSON-RPC port as a sans-IO object (synod.bitcoin.rpc): HTTP
framing by h11, Basic auth against ``rpcauth``, JSON-RPC 1.x and 2.0
envelopes, batches, pipelining, and what a malformed request gets; and a
node's answers to calls (bitcoind's error codes)."""

from __future__ import annotations

import base64
import json

import pytest

from synod.bitcoin.rpc import RpcHttpError, RpcProtocol, RpcReply, RpcRequest, rpc_auth_line
from synod.core.errors import LocalProtocolError

AUTH = rpc_auth_line("alice", "00ff", "secret")
TOKEN = base64.b64encode(b"alice:secret").decode()


def _post(body: bytes | str, *, token: str = TOKEN, extra: str = "", method: str = "POST") -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return (f"{method} / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\nContent-Length: {len(data)}\r\n"
            f"{extra}\r\n").encode() + data


def _split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_a_call_is_parsed_and_answered_with_the_legacy_envelope() -> None:
    proto = RpcProtocol(AUTH)
    [req] = proto.receive_data(_post('{"version":"1.1","method":"getblockhash","params":[3],"id":7}'))
    assert req == RpcRequest(method="getblockhash", params_json="[3]")
    status, headers, body = _split(proto.send(RpcReply(result_json='"ab"')))
    assert status == 200
    assert json.loads(body) == {"result": "ab", "error": None, "id": 7}
    assert "Connection" not in headers
    assert not proto.wants_close
    # an error: HTTP 500 (404 for an unknown method) with the error object, as bitcoind
    [_] = proto.receive_data(_post('{"method":"nope","id":"x"}'))
    status, _, body = _split(proto.send(RpcReply(error_code=-32601, error_message="Method not found")))
    assert status == 404
    assert json.loads(body) == {"result": None, "error": {"code": -32601, "message": "Method not found"}, "id": "x"}


def test_json_rpc_2_batches_notifications_and_pipelining() -> None:
    proto = RpcProtocol(AUTH)
    batch = '[{"jsonrpc":"2.0","method":"a","id":1},{"jsonrpc":"2.0","method":"b"},{"jsonrpc":"2.0","method":"c","id":3}]'
    data = _post(batch) + _post('{"jsonrpc":"2.0","method":"d","params":{"x":1},"id":4}')
    reqs = proto.receive_data(data[:50]) + proto.receive_data(data[50:])   # two requests, split anywhere
    assert [r.method for r in reqs] == ["a", "b", "c", "d"]
    assert reqs[3].params_json == '{"x":1}'
    assert proto.send(RpcReply(result_json="1")) == b""
    assert proto.send(RpcReply(result_json="2")) == b""
    status, _, body = _split(proto.send(RpcReply(error_code=-8, error_message="bad")))
    assert status == 200
    assert json.loads(body) == [{"jsonrpc": "2.0", "result": 1, "id": 1},     # the notification gets no answer
                                {"jsonrpc": "2.0", "error": {"code": -8, "message": "bad"}, "id": 3}]
    status, _, body = _split(proto.send(RpcReply(result_json="4")))
    assert json.loads(body) == {"jsonrpc": "2.0", "result": 4, "id": 4}
    with pytest.raises(LocalProtocolError):
        proto.send(RpcReply())


def test_connection_close_is_honoured() -> None:
    proto = RpcProtocol(AUTH)
    [_] = proto.receive_data(_post('{"method":"a","id":1}', extra="Connection: close\r\n") + _post('{"method":"b"}'))
    _, headers, _ = _split(proto.send(RpcReply()))
    assert headers["Connection"] == "close"
    assert proto.wants_close


@pytest.mark.parametrize(("data", "status"), [
    (_post('{"method":"a"}', token=base64.b64encode(b"alice:wrong").decode()), 401),
    (_post('{"method":"a"}', token="!!notbase64"), 401),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 401),
    (_post("", method="GET"), 405),
    (_post("{not json"), 500),
    (_post('{"params":[]}'), 400),
    (_post('{"method":"a","params":5}'), 400),
    (_post("[]"), 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", 413),
    (b"\x16\x03\x01\x02\x00garbage\r\n\r\n", 400),
])
def test_malformed_requests_get_an_error_response_and_the_connection_closes(data: bytes, status: int) -> None:
    proto = RpcProtocol(AUTH)
    with pytest.raises(RpcHttpError) as e:
        proto.receive_data(data)
    got, headers, _ = _split(proto.error_bytes(e.value))
    assert got == status
    assert headers["Connection"] == "close"
    with pytest.raises(RpcHttpError):
        proto.receive_data(b"more")          # broken for good


def test_no_rpcauth_refuses_everyone_and_a_bad_one_is_a_local_error() -> None:
    with pytest.raises(RpcHttpError):
        RpcProtocol("").receive_data(_post('{"method":"a"}'))
    with pytest.raises(LocalProtocolError):
        RpcProtocol("alice-without-salt")


def test_headers_and_bodies_are_bounded() -> None:
    proto = RpcProtocol(AUTH, body_bytes_max=100)
    with pytest.raises(RpcHttpError) as e:
        proto.receive_data(_post("[" + "1," * 100 + "1]"))
    assert e.value.status == 413
    proto = RpcProtocol(AUTH)
    with pytest.raises(RpcHttpError) as e:
        proto.receive_data(b"POST / HTTP/1.1\r\nX: " + b"a" * 70_000)
    assert e.value.status == 400

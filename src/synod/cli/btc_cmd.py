"""``synod btc``: Bitcoin's rules on real data, and a local network.

::

    synod btc validate FILE... [--network main|regtest] [--start-height N] [--json]
    synod btc up [--nodes 5] [--miners 2] [--block-interval 2s] [--dir runs/btc]
    synod btc status [--dir runs/btc] [--json]  |  synod btc down [--dir runs/btc]

``up``, ``status`` and ``down`` (:mod:`synod.cli._btc_net`) run a network of
real node processes on 127.0.0.1, each serving Bitcoin P2P and JSON-RPC.

``validate`` reads blocks (bitcoind ``blk*.dat`` files, raw blocks, a
block as hex), header lists (one 80-byte header as hex per line) or raw
transactions (binary or hex), in chain order across the files, and checks
every rule it can with what it was given:

- headers from genesis: each in the context of its parents (link, proof of
  work, the retarget every 2016 blocks, median time past, version); a
  segment starting elsewhere (``--start-height``) is rooted at a
  checkpoint up to its first retarget, whose headers are checked for link
  and proof of work only;
- blocks from genesis: connected to a UTXO set with every input's scripts
  verified; blocks without their parents: every rule that does not need
  the outputs they spend (proof of work, merkle root, witness commitment,
  sizes and weight, coinbase, BIP34 height, legacy sigops);
- transactions alone: the context-free checks (their inputs' outputs are
  not given).

Exit status: 0 every object valid; 1 one broke a rule (the message names
the rule, the object and where) or a file could not be read; 2 bad
arguments.
"""

from __future__ import annotations

import json
import string
import time
from pathlib import Path
from typing import Any

import click

from synod.cli._btc_net import down as _down
from synod.cli._btc_net import status as _status
from synod.cli._btc_net import up as _up

__all__ = ["btc"]

HEADER_HEX_CHARS = 160
_HEX = set(string.hexdigits)

HEADER_RULES_IN_CONTEXT = ["link to parent", "proof of work", "bits = retarget", "median time past", "not too far ahead",
                           "version"]
HEADER_RULES_CHECKPOINT = ["link to parent", "proof of work"]
BLOCK_RULES_ALONE = ["proof of work", "merkle root (and its mutation)", "size and weight", "coinbase first and only",
                     "transactions context-free", "legacy sigops", "BIP34 height", "witness commitment", "finality"]
BLOCK_RULES_CONNECTED = ["header in context", *BLOCK_RULES_ALONE[1:], "inputs unspent and mature", "amounts",
                         "BIP68 sequence locks", "sigop cost", "BIP30", "scripts (every input)", "coinbase <= subsidy + fees"]
TX_RULES = ["inputs and outputs present", "size", "amounts in range", "no duplicate inputs", "coinbase script length",
            "no null prevouts"]


@click.group()
def btc() -> None:
    """Bitcoin (Nakamoto 2008) as Bitcoin Core enforces it.

    Exit status: 0 valid; 1 a rule was broken or a file unreadable; 2 bad arguments.
    """


for _command in (_up, _status, _down):   # the local network (synod.cli._btc_net)
    btc.add_command(_command)


def _read(path: Path) -> tuple[str, list[bytes]]:
    """(kind, raw objects) of one file: ``blocks``, ``headers`` or ``unknown``."""
    from synod.bitcoin import read_blocks_dat

    data = path.read_bytes()
    if data[:4] in (bytes.fromhex("f9beb4d9"), bytes.fromhex("fabfb5da"), bytes.fromhex("0b110907")):
        return "blocks", read_blocks_dat(data, magic=data[:4])
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return "unknown", [data]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines and all(len(ln) == HEADER_HEX_CHARS and set(ln) <= _HEX for ln in lines):
        return "headers", [bytes.fromhex(ln) for ln in lines]
    joined = "".join(lines)
    if joined and set(joined) <= _HEX and len(joined) % 2 == 0:
        return "unknown", [bytes.fromhex(joined)]
    return "unknown", [data]


def _classify(raw: bytes) -> tuple[str, Any]:
    """A block if it parses as one, else a transaction; the parse error of
    the transaction attempt if neither."""
    from synod.bitcoin import parse_block, parse_transaction
    from synod.bitcoin.errors import RuleViolation

    try:
        return "block", parse_block(raw)
    except RuleViolation:
        return "tx", parse_transaction(raw)


class _Report:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.lines: list[dict[str, Any]] = []

    def ok(self, kind: str, what: str, rules: list[str], **extra: Any) -> None:
        self.lines.append({"kind": kind, "what": what, "ok": True, "rules": rules, **extra})
        if not self.as_json:
            click.echo(f"ok  {kind} {what}: {', '.join(rules)}")

    def fail(self, kind: str, what: str, rule: str, detail: str) -> None:
        self.lines.append({"kind": kind, "what": what, "ok": False, "rule": rule, "detail": detail})
        if not self.as_json:
            click.echo(f"REJECTED {kind} {what}: {rule}{': ' + detail if detail else ''}", err=True)


def _validate_headers(raws: list[bytes], params: Any, start_height: int | None, now_s: int, report: _Report) -> bool:
    from synod.bitcoin import hash_hex, parse_header
    from synod.bitcoin.chain import HeaderChain
    from synod.bitcoin.errors import RuleViolation

    headers = [parse_header(r) for r in raws]
    if headers[0].hash == params.genesis_hash:
        chain, rest, checkpoint, height0 = HeaderChain(params), headers[1:], 0, 0
    else:
        if start_height is None:
            raise click.UsageError("these headers do not start at genesis: give --start-height")
        height0 = start_height
        interval = params.difficulty_adjustment_interval
        first_retarget = -(-(start_height + 1) // interval) * interval   # the first boundary after the start
        checkpoint = min(len(headers), first_retarget - start_height + 1)
        try:
            chain = HeaderChain.from_checkpoint(params, headers[:checkpoint], start_height)
        except RuleViolation as e:
            report.fail("headers", f"{start_height}..{start_height + checkpoint - 1} (checkpoint)", e.rule, e.detail)
            return False
        rest = headers[checkpoint:]
    for header in rest:
        try:
            chain.accept_header(header, adjusted_time_s=now_s)
        except RuleViolation as e:
            report.fail("header", f"{hash_hex(header.hash)} (height {chain.tip.height + 1})", e.rule, e.detail)
            return False
    last = height0 + len(headers) - 1
    if checkpoint:
        report.ok("headers", f"{height0}..{height0 + checkpoint - 1} (checkpoint)", HEADER_RULES_CHECKPOINT,
                  count=checkpoint)
    if rest or not checkpoint:
        report.ok("headers", f"{height0 + checkpoint}..{last}", HEADER_RULES_IN_CONTEXT,
                  count=len(rest) + (0 if checkpoint else 1))
    return True


def _validate_blocks(blocks: list[Any], params: Any, start_height: int | None, now_s: int, report: _Report) -> bool:
    from synod.bitcoin import hash_hex
    from synod.bitcoin.chain import Chainstate
    from synod.bitcoin.errors import RuleViolation
    from synod.bitcoin.validation import check_block, contextual_check_block
    from synod.core.errors import LocalProtocolError

    if blocks[0].hash == params.genesis_hash:
        state = Chainstate(params)
        report.ok("block", f"0 {hash_hex(blocks[0].hash)}", ["genesis"])
        for block in blocks[1:]:
            known = state.headers.get(block.hash)
            if known is not None and known.height <= state.height:
                continue   # (files that overlap: a block already connected)
            try:
                state.connect(block, adjusted_time_s=now_s)
            except RuleViolation as e:
                report.fail("block", f"{state.height + 1} {hash_hex(block.hash)}", e.rule, e.detail)
                return False
            except LocalProtocolError as e:   # not the next block of the ones before it
                report.fail("block", f"{state.height + 1} {hash_hex(block.hash)}", "prev-blk-not-found", str(e))
                return False
            report.ok("block", f"{state.height} {hash_hex(block.hash)}", BLOCK_RULES_CONNECTED,
                      transactions=len(block.transactions))
        return True
    for i, block in enumerate(blocks):
        height = start_height + i if start_height is not None else _bip34_height(block, params)
        what = f"{height if height is not None else '?'} {hash_hex(block.hash)}"
        try:
            check_block(block, params)
            if height is not None:   # (the parent's median time past is not given: the most lenient one)
                contextual_check_block(block, height=height, prev_median_time_past_s=block.header.time - 1, params=params)
        except RuleViolation as e:
            report.fail("block", what, e.rule, e.detail)
            return False
        rules = BLOCK_RULES_ALONE if height is not None else BLOCK_RULES_ALONE[:6]
        report.ok("block", what, rules, transactions=len(block.transactions),
                  not_checked="inputs and scripts (the outputs they spend are not given)")
    return True


def _bip34_height(block: Any, params: Any) -> int | None:
    """The height a coinbase states (BIP34: blocks of version 2 and later, from
    its activation height on); None before (the first push is anything)."""
    from synod.bitcoin.script import decode_script_num, get_op

    if block.header.version < 2 or not block.transactions:
        return None
    script = block.transactions[0].inputs[0].script_sig
    op = get_op(script, 0) if script else None
    if op is None or op[1] is None or not 1 <= len(op[1]) <= 8:
        return None
    height = decode_script_num(op[1], max_bytes=8)
    return height if height >= params.bip34_height else None


@btc.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--network", type=click.Choice(["main", "regtest"]), default="main", show_default=True,
              help="Whose consensus parameters (genesis, proof-of-work limit, activation heights).")
@click.option("--start-height", type=click.IntRange(min=0), default=None,
              help="Height of the first block or header when they do not start at genesis.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: every object checked and its verdict.")
def validate(files: tuple[Path, ...], network: str, start_height: int | None, as_json: bool) -> None:
    """Check blocks, headers or transactions in FILES against every rule the
    data allows (see the module help); names the rule a failure broke."""
    from synod.bitcoin import MAINNET, REGTEST, RuleViolation, check_transaction, hash_hex

    params = MAINNET if network == "main" else REGTEST
    now_s = int(time.time())
    report = _Report(as_json)
    headers: list[bytes] = []
    blocks: list[Any] = []
    ok = True
    try:
        for path in files:
            kind, raws = _read(path)
            if kind == "headers":
                headers += raws
                continue
            for raw in raws:
                what, obj = _classify(raw)
                if what == "block":
                    blocks.append(obj)
                else:
                    check_transaction(obj)
                    report.ok("tx", hash_hex(obj.txid), TX_RULES,
                              not_checked="inputs and scripts (the outputs they spend are not given)")
        if headers:
            ok = _validate_headers(headers, params, start_height, now_s, report)
        if ok and blocks:
            ok = _validate_blocks(blocks, params, start_height, now_s, report)
    except RuleViolation as e:
        report.fail("input", "", e.rule, e.detail)
        ok = False
    except OSError as e:
        raise click.ClickException(f"cannot read: {e}") from e
    if as_json:
        click.echo(json.dumps({"ok": ok, "checked": report.lines}))
    elif ok:
        n = sum(line.get("count", 1) for line in report.lines)
        click.echo(f"valid: {n} object(s) checked")
    if not ok:
        raise SystemExit(1)

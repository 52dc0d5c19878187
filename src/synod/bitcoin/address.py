"""Addresses and private keys as people write them.

An address names a scriptPubKey: base58check (a version byte, then a
20-byte hash: P2PKH ``1...``/``m...``, P2SH ``3...``/``2...``) or a segwit
address (BIP173 bech32 for witness version 0, BIP350 bech32m for versions
1-16: ``bc1q...`` P2WPKH/P2WSH, ``bc1p...`` P2TR). A private key in WIF is
base58check of a version byte, the 32-byte secret, and ``01`` when its
public key is compressed. The encodings come from ``base58`` and
``bech32m`` (libraries); this module knows which bytes mean what on which
network.
"""

from __future__ import annotations

import base58
import bech32m
import msgspec

from synod.bitcoin.script import OP, push_data, witness_program

__all__ = ["Network", "NETWORKS", "AddressError", "address_to_script", "script_to_address", "encode_wif", "decode_wif"]


class Network(msgspec.Struct, frozen=True, kw_only=True):
    """The version bytes and human-readable part of one network."""

    name: str
    p2pkh_version: int
    p2sh_version: int
    wif_version: int
    hrp: str


NETWORKS: dict[str, Network] = {
    "main": Network(name="main", p2pkh_version=0x00, p2sh_version=0x05, wif_version=0x80, hrp="bc"),
    "test": Network(name="test", p2pkh_version=0x6F, p2sh_version=0xC4, wif_version=0xEF, hrp="tb"),
    "regtest": Network(name="regtest", p2pkh_version=0x6F, p2sh_version=0xC4, wif_version=0xEF, hrp="bcrt"),
}


class AddressError(ValueError):
    """Not an address (or WIF key) of the network asked for; says why."""


def _network(network: str) -> Network:
    try:
        return NETWORKS[network]
    except KeyError:
        raise AddressError(f"unknown network {network!r} (one of {', '.join(NETWORKS)})") from None


def address_to_script(address: str, network: str = "main") -> bytes:
    """The scriptPubKey an address pays to.

    Raises:
        AddressError: not a valid address of ``network`` (bad checksum,
            unknown version, wrong length, bech32 where bech32m is due...).
    """
    net = _network(network)
    if address.lower().startswith(net.hrp + "1"):
        try:
            decoded = bech32m.decode(net.hrp, address)
        except bech32m.DecodeError:
            raise AddressError(f"{address!r}: not a valid segwit address of {network} (BIP173/BIP350)") from None
        version, program = decoded.witver, bytes(decoded.witprog)
        return bytes((OP._0 if version == 0 else OP._1 + version - 1,)) + push_data(program)
    try:
        payload = base58.b58decode_check(address)
    except ValueError:
        raise AddressError(f"{address!r}: not base58check") from None
    if len(payload) != 21:
        raise AddressError(f"{address!r}: a base58 address holds 21 bytes, not {len(payload)}")
    version, h = payload[0], payload[1:]
    if version == net.p2pkh_version:
        return bytes((OP.DUP, OP.HASH160, 20)) + h + bytes((OP.EQUALVERIFY, OP.CHECKSIG))
    if version == net.p2sh_version:
        return bytes((OP.HASH160, 20)) + h + bytes((OP.EQUAL,))
    raise AddressError(f"{address!r}: version byte {version} is not an address of {network}")


def script_to_address(script: bytes, network: str = "main") -> str | None:
    """The address of a standard scriptPubKey (P2PKH, P2SH, any witness
    program), or None for scripts without one (P2PK, bare multisig, OP_RETURN)."""
    net = _network(network)
    if len(script) == 25 and script[:3] == bytes((OP.DUP, OP.HASH160, 20)) and script[23:] == bytes(
            (OP.EQUALVERIFY, OP.CHECKSIG)):
        return base58.b58encode_check(bytes((net.p2pkh_version,)) + script[3:23]).decode()
    if len(script) == 23 and script[:2] == bytes((OP.HASH160, 20)) and script[22] == OP.EQUAL:
        return base58.b58encode_check(bytes((net.p2sh_version,)) + script[2:22]).decode()
    program = witness_program(script)
    if program is not None:
        try:
            return bech32m.encode(net.hrp, program[0], program[1])
        except bech32m.DecodeError:
            return None   # (a program no address can carry: version 0 of a length other than 20 or 32)
    return None


def encode_wif(secret: bytes, compressed: bool = True, network: str = "main") -> str:
    """A 32-byte private key in Wallet Import Format."""
    if len(secret) != 32:
        raise AddressError(f"a private key is 32 bytes, not {len(secret)}")
    net = _network(network)
    return base58.b58encode_check(bytes((net.wif_version,)) + secret + (b"\x01" if compressed else b"")).decode()


def decode_wif(wif: str, network: str = "main") -> tuple[bytes, bool]:
    """``(secret, compressed)`` from a WIF private key.

    Raises:
        AddressError: not a WIF key of ``network``.
    """
    net = _network(network)
    try:
        payload = base58.b58decode_check(wif)
    except ValueError:
        raise AddressError("not base58check") from None
    if not payload or payload[0] != net.wif_version:
        raise AddressError(f"not a private key of {network}")
    if len(payload) == 33:
        return payload[1:], False
    if len(payload) == 34 and payload[33] == 1:
        return payload[1:33], True
    raise AddressError(f"a WIF key holds 33 or 34 bytes, not {len(payload)}")

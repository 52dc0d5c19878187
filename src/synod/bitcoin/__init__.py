"""Bitcoin (Nakamoto 2008) as Bitcoin Core enforces it: the rules.

Theory of operation (grows with issue 14):

- ``primitives``: transactions, headers and blocks in Bitcoin's own byte
  formats (legacy and BIP144 segwit), txid/wtxid, merkle roots
  (whitepaper sections 2-4, 7), context-free transaction checks.
- ``script``: opcodes, parsing, script numbers, sigop counting, templates.
- ``interpreter`` (with ``sighash``, ``taproot``, ``asm``): Script as Core
  evaluates it under its verification flags: P2SH (BIP16), CLTV/CSV
  (BIP65/112), segwit v0 (BIP141/143), taproot and tapscript
  (BIP340/341/342); signatures through coincurve (libsecp256k1).
- ``pow``, ``validation``: compact targets, proof of work, the retarget
  every 2016 blocks, header and block rules (context-free and in context),
  the subsidy schedule.
- ``chain``: the UTXO set, connecting and disconnecting blocks (with undo
  records, for reorgs), the header chain by most work, a ``Chainstate``.
- ``mempool`` (with ``_policy``): unconfirmed transactions valid on the
  tip, Core's acceptance rules and relay policy (fee rates, dust,
  standardness), orphans, eviction by package fee rate, block templates by
  ancestor fee rate (CPFP), removal on a block and re-adding after a reorg.
- ``messages``, ``p2p``, ``protocol``: Bitcoin's peer-to-peer messages as
  typed messages (what synod nodes send each other), their wire format
  (magic, command, length, checksum; Core's payload encodings and limits)
  and the sans-IO protocol object a node's P2P port serves, so peers
  nobody here wrote (python-bitcoinlib, bitcoind) can talk to it.
- ``node`` (with ``_blocktree``): a full node, and a miner with a share of
  the hash power: handshake, headers-first sync, gossip, the most-work
  chain with reorgs, blocks durable on disk; its P2P port and JSON-RPC
  (``rpc``) for clients nobody here wrote; peers that misbehave on the P2P
  port banned for a while (``_banlist``); ``wallet``: a minimal regtest
  wallet behind the RPC (P2WPKH keys kept in ``wallet.dat``, coin
  selection, BIP143 signing); ``strategies``: the double-spend
  attacker and the selfish miner as node subclasses; ``factories``: the
  cluster config's factory.
- ``analysis``: the whitepaper's double-spend probability, the exact race,
  selfish mining's revenue and threshold.
- ``address``: base58check and bech32/bech32m addresses, WIF keys.
- ``errors``: every broken rule is a :class:`RuleViolation` naming the rule
  as Core does (``bad-txns-vin-empty``, ``high-hash``; script errors as
  ``EVAL_FALSE``), raised for the input, never a traceback.

Everything here is pure and deterministic: no network, clock or global
randomness (a node's randomness, the wallet's keys included, comes from
its seeded ``ctx.rng``).
"""

from synod.bitcoin.address import AddressError, address_to_script, script_to_address
from synod.bitcoin.chain import Chainstate, HeaderChain, UtxoSet, connect_block, disconnect_block
from synod.bitcoin.errors import RuleViolation, ScriptFailure
from synod.bitcoin.interpreter import PrecomputedTransaction, VerifyFlags, verify_input, verify_script, verify_transaction
from synod.bitcoin.mempool import Mempool, MempoolPolicy
from synod.bitcoin.node import BitcoinConfig, BitcoinNode
from synod.bitcoin.p2p import REGTEST_MAGIC, MessageReader, P2pError, decode_payload, encode_message
from synod.bitcoin.pow import MAINNET, REGTEST, ConsensusParams
from synod.bitcoin.primitives import (
    Block,
    BlockHeader,
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    check_transaction,
    hash_hex,
    merkle_root,
    parse_block,
    parse_header,
    parse_transaction,
    read_blocks_dat,
)
from synod.bitcoin.protocol import P2pProtocol
from synod.bitcoin.validation import check_block, contextual_check_block
from synod.bitcoin.wallet import Wallet

__all__ = [
    "Mempool", "MempoolPolicy", "BitcoinConfig", "BitcoinNode",
    "REGTEST_MAGIC", "MessageReader", "P2pError", "decode_payload", "encode_message",
    "P2pProtocol",
    "AddressError", "address_to_script", "script_to_address", "Chainstate", "HeaderChain", "UtxoSet", "connect_block",
    "disconnect_block", "PrecomputedTransaction", "VerifyFlags", "verify_input", "verify_script", "verify_transaction",
    "MAINNET", "REGTEST", "ConsensusParams", "check_block", "contextual_check_block",
    "RuleViolation", "ScriptFailure", "Block", "BlockHeader", "OutPoint", "Transaction", "TxIn", "TxOut",
    "check_transaction", "hash_hex", "merkle_root", "parse_block", "parse_header", "parse_transaction",
    "read_blocks_dat", "Wallet",
]

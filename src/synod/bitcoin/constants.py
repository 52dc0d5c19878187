"""Bitcoin's consensus constants and synod's own limits, with units.

The consensus values are Bitcoin Core's (``consensus/consensus.h``,
``consensus/amount.h``, ``script/script.h``, ``chainparams.cpp``): changing
one forks the chain. Names follow Core's where a reader will look them up.
"""

from __future__ import annotations

# -- amounts (satoshis) --------------------------------------------------------------------------
COIN = 100_000_000                       # satoshis per bitcoin
MAX_MONEY = 21_000_000 * COIN            # no amount, alone or summed, may exceed this

# -- blocks ---------------------------------------------------------------------------------------
WITNESS_SCALE_FACTOR = 4                 # weight = stripped size * 3 + total size (BIP141)
MAX_BLOCK_WEIGHT = 4_000_000             # weight units
MAX_BLOCK_SIGOPS_COST = 80_000           # sigop cost units (legacy sigops count x4)
COINBASE_MATURITY = 100                  # blocks before a coinbase output may be spent
MIN_COINBASE_SCRIPT_BYTES = 2
MAX_COINBASE_SCRIPT_BYTES = 100
HEADER_BYTES = 80
MAX_FUTURE_BLOCK_TIME_S = 2 * 60 * 60    # a header's time may run at most this far ahead
MEDIAN_TIME_SPAN = 11                    # blocks whose median time a new one must exceed

# -- subsidy and difficulty (mainnet; regtest where noted) ----------------------------------------
SUBSIDY_HALVING_INTERVAL = 210_000       # blocks (regtest: 150)
INITIAL_SUBSIDY = 50 * COIN
DIFFICULTY_ADJUSTMENT_INTERVAL = 2016    # blocks between retargets
POW_TARGET_TIMESPAN_S = 14 * 24 * 60 * 60
POW_TARGET_SPACING_S = 10 * 60
POW_LIMIT = 0x00000000FFFF0000000000000000000000000000000000000000000000000000   # mainnet, bits 0x1d00ffff
REGTEST_POW_LIMIT = 0x7FFFFF0000000000000000000000000000000000000000000000000000000000
BIP34_HEIGHT = 227_931                   # mainnet: coinbase starts with its height from here on
BIP65_HEIGHT = 388_381                   # CHECKLOCKTIMEVERIFY enforced
BIP66_HEIGHT = 363_725                   # strict DER enforced
CSV_HEIGHT = 419_328                     # BIP68/112/113
SEGWIT_HEIGHT = 481_824                  # BIP141/143/147
TAPROOT_HEIGHT = 709_632                 # BIP341/342

# -- transactions ---------------------------------------------------------------------------------
LOCKTIME_THRESHOLD = 500_000_000         # nLockTime below: a height; at or above: a unix time
SEQUENCE_FINAL = 0xFFFFFFFF
SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22
SEQUENCE_LOCKTIME_MASK = 0x0000FFFF

# -- scripts --------------------------------------------------------------------------------------
MAX_SCRIPT_BYTES = 10_000
MAX_SCRIPT_ELEMENT_BYTES = 520
MAX_OPS_PER_SCRIPT = 201
MAX_PUBKEYS_PER_MULTISIG = 20
MAX_STACK_SIZE = 1000                    # main stack + alt stack items
LOCKTIME_VERIFY_SEQUENCE = 1 << 0

# -- serialization (synod's limits at the boundary; Core's MAX_SIZE) ------------------------------
MAX_COMPACT_SIZE = 0x02000000            # no count or length read from the wire may exceed this
MAX_BLOCK_BYTES = 4_000_000              # a serialized block can never be larger (weight limit)
MAX_TX_BYTES = 4_000_000

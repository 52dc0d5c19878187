"""The shared core: node contract, host, codec, records, errors."""

from synod.core.codec import (
    FRAME_SIZE_BYTES_MAX,
    Message,
    any_message_type,
    decode,
    encode,
    encoded_size_bytes,
    message_fields,
    message_tag,
    registered_types,
    to_jsonable,
)
from synod.core.errors import ConfigError, LocalProtocolError, RemoteProtocolError, SynodError
from synod.core.node import Context, Disk, Effects, Host, Node, ReplyHandle, TimerOp, check_disk_range
from synod.core.params import Params, params_to_json, parse_params
from synod.core.records import RecordScan, checksum, pack_record, resync, scan_records

__all__ = [
    "FRAME_SIZE_BYTES_MAX", "Message", "any_message_type", "decode", "encode", "encoded_size_bytes",
    "message_fields", "message_tag", "registered_types", "to_jsonable",
    "ConfigError", "LocalProtocolError", "RemoteProtocolError", "SynodError",
    "Context", "Disk", "Effects", "Host", "Node", "ReplyHandle", "TimerOp", "check_disk_range",
    "Params", "parse_params", "params_to_json",
    "RecordScan", "checksum", "pack_record", "scan_records", "resync",
]

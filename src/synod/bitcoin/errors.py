"""What a broken rule looks like: :class:`RuleViolation`, carrying the
rule's name as Bitcoin Core reports it (``bad-txns-vin-empty``,
``high-hash``; for scripts, the ``ScriptError`` name the test vectors use:
``EVAL_FALSE``, ``SIG_DER``)."""

from __future__ import annotations

from synod.core.errors import RemoteProtocolError

__all__ = ["RuleViolation", "ScriptFailure"]


class RuleViolation(RemoteProtocolError):
    """A block, header, transaction or script broke a consensus rule, or its
    bytes do not parse. ``rule`` is the rule's name (Core's reject reason);
    ``detail`` says where. Raised for input from peers and files: the
    caller rejects the object and runs on (never a traceback)."""

    def __init__(self, rule: str, detail: str = "") -> None:
        super().__init__(f"{rule}: {detail}" if detail else rule)
        self.rule = rule
        self.detail = detail


class ScriptFailure(RuleViolation):
    """Script evaluation failed; ``rule`` is Core's ``ScriptError`` name
    without its ``SCRIPT_ERR_`` prefix (``EVAL_FALSE``, ``SIG_DER``)."""

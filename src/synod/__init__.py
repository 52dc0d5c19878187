"""synod: the classic distributed systems as deterministic, runnable services.

See docs/architecture.md for the shape of the package: ``core`` (node contract,
codec), ``sim`` (the deterministic simulator), ``runtime`` (real processes over
TCP) and one folder per system (``mapreduce``, ...).
"""

__version__ = "0.1.0"

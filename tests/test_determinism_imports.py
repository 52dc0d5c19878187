"""DESIGN.md section 1: a system folder never imports a nondeterministic module."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "synod"
SHARED_LAYERS = {"core", "sim", "runtime", "check", "workload", "harness", "cli", "__pycache__"}
FORBIDDEN = {"asyncio", "socket", "time", "random", "threading", "subprocess", "os"}


def _forbidden_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    hits = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                hits.append(f"{path.relative_to(SRC)}:{node.lineno} imports {name}")
    return hits


def system_folders() -> list[Path]:
    return sorted(p for p in SRC.iterdir() if p.is_dir() and p.name not in SHARED_LAYERS)


def test_system_folders_exist() -> None:
    assert any(p.name == "mapreduce" for p in system_folders())


def test_no_system_folder_imports_clock_socket_thread_or_random() -> None:
    hits = [h for folder in system_folders() for f in sorted(folder.rglob("*.py")) for h in _forbidden_imports(f)]
    assert hits == [], "\n".join(hits)


def test_scanner_catches_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os.path\nfrom time import monotonic\nimport msgpack\n")
    global SRC
    old, SRC = SRC, tmp_path
    try:
        hits = _forbidden_imports(bad)
    finally:
        SRC = old
    assert [h.split(" imports ")[1] for h in hits] == ["os.path", "time"]

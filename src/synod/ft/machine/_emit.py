"""Python source for one RV32IM instruction (Unprivileged ISA 20191213,
chapter 2 for RV32I, chapter 7 for M).

``Emitter.emit(w, pc, k)`` returns the statements of instruction word ``w``
at ``pc``, the ``k``-th of its block, and its terminator (``Term``) when it
ends the block. Statements name the region function's locals: ``x`` (the
registers), ``mem`` (RAM), ``pf`` (page flags), ``n`` (instructions of this
call retired before the block), and the helpers bound as defaults
(``_translate``); in a loop ``_codegen`` turns each ``x[N]`` into a local
``rN``. A statement that hands over to the precise path raises
``Slow(pc, n + k)``: ``k`` instructions of the block ran before it.

Semantics, registers unsigned 32-bit (``M`` = 2**32 - 1, ``S`` = 2**31):
ADD/SUB/MUL mask to 32 bits; SLT/SLTI/BLT/BGE compare ``a ^ S``; SRA/SRAI
shift the signed value and mask; shift amounts are ``rs2 & 31`` (an
RV32 SLLI/SRLI/SRAI with imm bit 5 set is reserved: illegal); MULH,
MULHSU, MULHU take the high word of the exact product of the signed or
unsigned views; DIVU/REMU by zero give M and the dividend; DIV/REM
(``_isa.div``/``rem``) round toward zero, give -1 and the dividend for
division by zero, and -2**31 and 0 for -2**31 / -1 (section 7.2).
"""

from __future__ import annotations

from synod.ft.machine import _isa
from synod.ft.machine._isa import MASK32, SIGN32
from synod.ft.machine._memory import DIRTY


class Term:
    """How a block ends: ``kind`` (jump, leave, branch, indirect, slow),
    ``successors`` (the pcs it may go to that are known at translation time),
    the branch condition ``cond`` (a Python expression), and ``pc`` (the
    target of a leave, the instruction of a slow end). ``_codegen`` turns it
    into statements."""

    def __init__(self, kind: str, successors: tuple[int, ...] = (), cond: str = "", pc: int = 0,
                 returns_to: int | None = None) -> None:
        self.kind = kind
        self.successors = successors
        self.cond = cond
        self.pc = pc
        self.returns_to = returns_to

    @classmethod
    def jump(cls, target: int, returns_to: int | None = None) -> Term:
        """To ``target``; a call (JAL with a link register) also names the
        pc it returns to, which counts as a successor when finding loops."""
        return cls("jump", (target,), returns_to=returns_to)

    @classmethod
    def leave(cls, target: int) -> Term:
        """Return to the run loop at ``target`` even if it is in the region (after FENCE.I)."""
        return cls("leave", (), pc=target)

    @classmethod
    def branch(cls, cond: str, taken: int, fall: int) -> Term:
        return cls("branch", (taken, fall), cond)

    @classmethod
    def indirect(cls) -> Term:
        """The next pc is the local ``t`` (JALR)."""
        return cls("indirect")

    @classmethod
    def slow(cls, pc: int) -> Term:
        """The block's last instruction, at ``pc``, takes the precise path."""
        return cls("slow", pc=pc)

    def links(self) -> tuple[int, ...]:
        """The successors, and a call's return address: the edges that make loops."""
        return self.successors if self.returns_to is None else (*self.successors, self.returns_to)


def _x(r: int) -> str:
    return f"x[{r}]" if r else "0"


def _set(rd: int, expr: str) -> list[str]:
    return [f"x[{rd}] = {expr}"] if rd else []


Emitted = tuple[list[str], Term | None]


class Emitter:
    """Emits instructions for RAM of ``ram_size`` bytes at ``ram_base``."""

    def __init__(self, ram_base: int, ram_size: int) -> None:
        self.base = ram_base
        self.size = ram_size

    def emit(self, w: int, pc: int, k: int) -> Emitted:
        op = w & 0x7F
        rd, funct3, rs1, rs2, funct7 = (w >> 7) & 31, (w >> 12) & 7, (w >> 15) & 31, (w >> 20) & 31, w >> 25
        if op == _isa.OP_IMM:
            return self._op_imm(w, pc, rd, funct3, rs1, funct7)
        if op == _isa.OP_OP:
            return self._op(pc, rd, funct3, rs1, rs2, funct7)
        if op == _isa.OP_LOAD:
            return self._load(w, pc, k, rd, funct3, rs1)
        if op == _isa.OP_STORE:
            return self._store(w, pc, k, funct3, rs1, rs2)
        if op == _isa.OP_BRANCH:
            return self._branch(w, pc, k, funct3, rs1, rs2)
        if op == _isa.OP_LUI:
            return _set(rd, str(_isa.imm_u(w))), None
        if op == _isa.OP_AUIPC:
            return _set(rd, str((pc + _isa.imm_u(w)) & MASK32)), None
        if op == _isa.OP_JAL:
            target = (pc + _isa.imm_j(w)) & MASK32
            if target & 3:
                return [], Term.slow(pc)
            return _set(rd, str((pc + 4) & MASK32)), Term.jump(target, (pc + 4) & MASK32 if rd else None)
        if op == _isa.OP_JALR and funct3 == 0:
            lines = [f"t = ({_x(rs1)} + {_isa.imm_i(w) & MASK32}) & 4294967294",
                     f"if t & 2: raise Slow({pc}, n + {k})"]
            return lines + _set(rd, str((pc + 4) & MASK32)), Term.indirect()
        if op == _isa.OP_MISC_MEM and funct3 == 0:            # FENCE: one hart, no caches: nothing to order
            return [], None
        if op == _isa.OP_MISC_MEM and funct3 == 1:            # FENCE.I: what follows is decoded afresh
            return [], Term.leave((pc + 4) & MASK32)
        return [], Term.slow(pc)                              # SYSTEM, or an illegal encoding

    def _op_imm(self, w: int, pc: int, rd: int, funct3: int, rs1: int, funct7: int) -> Emitted:
        imm = _isa.imm_i(w) & MASK32
        shamt = (w >> 20) & 31
        a = _x(rs1)
        if funct3 == 0:
            expr = str(imm) if rs1 == 0 else (a if imm == 0 else f"({a} + {imm}) & 4294967295")
        elif funct3 == 2:
            expr = f"1 if ({a} ^ 2147483648) < {imm ^ SIGN32} else 0"
        elif funct3 == 3:
            expr = f"1 if {a} < {imm} else 0"
        elif funct3 == 4:
            expr = f"{a} ^ {imm}"
        elif funct3 == 6:
            expr = f"{a} | {imm}"
        elif funct3 == 7:
            expr = f"{a} & {imm}"
        elif funct3 == 1 and funct7 == 0:
            expr = f"({a} << {shamt}) & 4294967295"
        elif funct3 == 5 and funct7 == 0:
            expr = f"{a} >> {shamt}"
        elif funct3 == 5 and funct7 == 0x20:
            expr = f"((({a} ^ 2147483648) - 2147483648) >> {shamt}) & 4294967295"
        else:
            return [], Term.slow(pc)                           # RV32 shifts with imm[5] set are reserved
        return _set(rd, expr), None

    def _op(self, pc: int, rd: int, funct3: int, rs1: int, rs2: int, funct7: int) -> Emitted:
        a, b = _x(rs1), _x(rs2)
        sa, sb = f"(({a} ^ 2147483648) - 2147483648)", f"(({b} ^ 2147483648) - 2147483648)"
        table: dict[tuple[int, int], str] = {
            (0, 0): f"({a} + {b}) & 4294967295",
            (0, 0x20): f"({a} - {b}) & 4294967295",
            (0, 1): f"({a} * {b}) & 4294967295",
            (1, 0): f"({a} << ({b} & 31)) & 4294967295",
            (1, 1): f"(({sa} * {sb}) >> 32) & 4294967295",               # MULH
            (2, 0): f"1 if ({a} ^ 2147483648) < ({b} ^ 2147483648) else 0",
            (2, 1): f"(({sa} * {b}) >> 32) & 4294967295",                 # MULHSU
            (3, 0): f"1 if {a} < {b} else 0",
            (3, 1): f"({a} * {b}) >> 32",                                  # MULHU
            (4, 0): f"{a} ^ {b}",
            (4, 1): f"div({a}, {b})",
            (5, 0): f"{a} >> ({b} & 31)",
            (5, 0x20): f"({sa} >> ({b} & 31)) & 4294967295",
            (5, 1): f"({a} // d if (d := {b}) else 4294967295)",           # DIVU: by zero -> 2**32-1
            (6, 0): f"{a} | {b}",
            (6, 1): f"rem({a}, {b})",
            (7, 0): f"{a} & {b}",
            (7, 1): f"({a} % d if (d := {b}) else {a})",                   # REMU: by zero -> the dividend
        }
        expr = table.get((funct3, funct7))
        if expr is None:
            return [], Term.slow(pc)
        return _set(rd, expr), None

    def _address(self, rs1: int, imm: int) -> str:
        """``o``: the access's offset from RAM's base, ``x[rs1] + imm - base``,
        not reduced mod 2**32: only 0 <= o < size is RAM, and an address that
        wraps around 2**32 lands outside that range and takes the precise
        path, which computes it exactly. (Small ints stay small: no 2**32 mask.)"""
        c = imm - self.base
        if rs1 == 0:
            return f"o = {c}"
        return f"o = x[{rs1}] + {c}" if c >= 0 else f"o = x[{rs1}] - {-c}"

    def _load(self, w: int, pc: int, k: int, rd: int, funct3: int, rs1: int) -> Emitted:
        width = {0: 1, 1: 2, 2: 4, 4: 1, 5: 2}.get(funct3)
        if width is None:
            return [], Term.slow(pc)
        limit = self.size - width + 1                            # o < limit: all `width` bytes in RAM
        slow = f"slow({pc}, n + {k})"
        lines = [self._address(rs1, _isa.imm_i(w))]
        if rd == 0:
            return lines + [f"if not 0 <= o < {limit}: {slow}"], None
        if funct3 == 0:
            return lines + [f"v = mem[o] if 0 <= o < {limit} else {slow}",
                            f"x[{rd}] = v | 4294967040 if v & 128 else v"], None
        if funct3 == 1:
            return lines + [f"x[{rd}] = s16(mem, o)[0] & 4294967295 if 0 <= o < {limit} else {slow}"], None
        read = {1: "mem[o]", 2: "u16(mem, o)[0]", 4: "u32(mem, o)[0]"}[width]
        return lines + [f"x[{rd}] = {read} if 0 <= o < {limit} else {slow}"], None

    def _store(self, w: int, pc: int, k: int, funct3: int, rs1: int, rs2: int) -> Emitted:
        if funct3 > 2:
            return [], Term.slow(pc)
        v = _x(rs2)
        lines = [self._address(rs1, _isa.imm_s(w))]
        if funct3 == 0:
            return lines + [f"if pf[o >> 12] == {DIRTY}: mem[o] = {v} & 255",
                            f"else: store(o, 1, {v} & 255, {pc}, n + {k})"], None
        if funct3 == 1:
            return lines + [f"if pf[o >> 12] == {DIRTY} and o & 4095 != 4095: p16(mem, o, {v} & 65535)",
                            f"else: store(o, 2, {v} & 65535, {pc}, n + {k})"], None
        return lines + [f"if pf[o >> 12] == {DIRTY} and o & 4095 < 4093: p32(mem, o, {v})",
                        f"else: store(o, 4, {v}, {pc}, n + {k})"], None

    def _branch(self, w: int, pc: int, k: int, funct3: int, rs1: int, rs2: int) -> Emitted:
        a, b = _x(rs1), _x(rs2)
        sa = f"({a} ^ 2147483648)" if rs1 else str(SIGN32)
        sb = f"({b} ^ 2147483648)" if rs2 else str(SIGN32)
        cond = {0: f"{a} == {b}", 1: f"{a} != {b}", 4: f"{sa} < {sb}", 5: f"{sa} >= {sb}",
                6: f"{a} < {b}", 7: f"{a} >= {b}"}.get(funct3)
        if cond is None:
            return [], Term.slow(pc)
        target, fall = (pc + _isa.imm_b(w)) & MASK32, (pc + 4) & MASK32
        if target & 3:                                           # taken: instruction-address-misaligned trap
            return [f"if {cond}: raise Slow({pc}, n + {k})"], Term.jump(fall)
        return [], Term.branch(cond, target, fall)

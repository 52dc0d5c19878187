"""Seeded random RV32IM programs for the differential tests.

Each program starts every register at a random value (x0 aside, and s0
holding a scratch buffer of random bytes), then runs ``length`` random
instructions: every register-register and register-immediate operation
of RV32I and M (any rd, x0 included, any rs1/rs2), LUI and AUIPC, loads
and stores of every width at random offsets into the scratch buffer
(misaligned ones included), and now and then a forward branch over one
instruction. With ``loop`` > 1 that body runs ``loop`` times (a counted
loop on s1, which the body leaves alone), so the translation of loops (a
region, registers in locals) is compared too. Then it writes x1..x31 and
the scratch buffer to stdout and exits 0. Assembled by riscv64-unknown-elf-gcc; run under synod, qemu-riscv32
and unicorn, whose stdout, exit status and final registers must agree.
"""

from __future__ import annotations

import random

R_OPS = ["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and",
         "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"]
I_OPS = ["addi", "slti", "sltiu", "xori", "ori", "andi"]
SHIFT_OPS = ["slli", "srli", "srai"]
LOADS = {"lb": 1, "lh": 2, "lw": 4, "lbu": 1, "lhu": 2}
STORES = {"sb": 1, "sh": 2, "sw": 4}
BRANCHES = ["beq", "bne", "blt", "bge", "bltu", "bgeu"]
SCRATCH_BYTES = 512
SCRATCH_REG = "s0"
LOOP_REG = "s1"
REGS = [f"x{i}" for i in range(32) if i not in (8, 9)]   # every register but s0 (x8) and s1 (x9)
EDGE_VALUES = [0, 1, 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF, 31, 32, 0xFFFF_FFE1]


def _value(rng: random.Random) -> int:
    return rng.choice(EDGE_VALUES) if rng.random() < 0.3 else rng.getrandbits(32)


def _instruction(rng: random.Random) -> str:
    rd = rng.choice(REGS) if rng.random() > 0.03 else "x0"
    rs1, rs2 = rng.choice(REGS + ["x0"]), rng.choice(REGS + ["x0"])
    kind = rng.random()
    if kind < 0.35:
        return f"{rng.choice(R_OPS)} {rd}, {rs1}, {rs2}"
    if kind < 0.55:
        imm = rng.choice([-2048, -1, 0, 1, 2047]) if rng.random() < 0.3 else rng.randint(-2048, 2047)
        return f"{rng.choice(I_OPS)} {rd}, {rs1}, {imm}"
    if kind < 0.65:
        return f"{rng.choice(SHIFT_OPS)} {rd}, {rs1}, {rng.choice([0, 1, 31, rng.randint(0, 31)])}"
    if kind < 0.70:
        return f"{rng.choice(['lui', 'auipc'])} {rd}, {rng.randint(0, 0xFFFFF)}"
    if kind < 0.85:
        name = rng.choice(list(LOADS))
        return f"{name} {rd}, {rng.randint(0, SCRATCH_BYTES - LOADS[name])}({SCRATCH_REG})"
    if kind < 0.97:
        name = rng.choice(list(STORES))
        return f"{name} {rs2}, {rng.randint(0, SCRATCH_BYTES - STORES[name])}({SCRATCH_REG})"
    return f"{rng.choice(BRANCHES)} {rs1}, {rs2}, 1f\n    {rng.choice(R_OPS)} {rd}, {rs1}, {rs2}\n1:"


def random_program(seed: int, length: int = 400, loop: int = 1) -> str:
    """The assembly text of random program ``seed`` (a whole program: _start, data, exit)."""
    rng = random.Random(seed)
    lines = [f"# synod random RV32IM program, seed {seed}", "    .section .text.entry", "    .globl _start",
             "_start:", f"    la {SCRATCH_REG}, scratch", f"    li {LOOP_REG}, {loop}"]
    lines += [f"    li {r}, {_value(rng)}" for r in REGS if r != "x0"]
    lines += ["loop:"] + ["    " + _instruction(rng) for _ in range(length)]
    lines += [f"    addi {LOOP_REG}, {LOOP_REG}, -1", f"    bnez {LOOP_REG}, loop"]
    lines += [f"    sw x{i}, {4 * i}({SCRATCH_REG})" for i in range(1, 32) if i != 8]
    lines += [f"    sw {SCRATCH_REG}, 32({SCRATCH_REG})",
              "    li a7, 64", "    li a0, 1", f"    mv a1, {SCRATCH_REG}", f"    li a2, {SCRATCH_BYTES}", "    ecall",
              "    li a7, 93", "    li a0, 0", "    ecall",
              "    .data", "    .align 4", "scratch:"]
    data = rng.randbytes(SCRATCH_BYTES)
    lines += ["    .byte " + ", ".join(str(b) for b in data[i:i + 32]) for i in range(0, SCRATCH_BYTES, 32)]
    lines += ["    .bss", "    .space 4096"]
    return "\n".join(lines) + "\n"

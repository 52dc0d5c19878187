"""Machine mode: the CSR instructions (Unprivileged ISA 20191213, chapter 9
"Zicsr"), the machine-level CSRs (Privileged spec 20211203, 3.1), traps
and MRET (3.1.6.1, 3.1.7, 3.3), interrupts (3.1.9), WFI (3.3.3), and a
user program's view (ECALL served, CSRs illegal)."""

from __future__ import annotations

from tests.ft._asm import (
    A0,
    A1,
    A2,
    EBREAK,
    ECALL,
    MRET,
    T0,
    T1,
    T2,
    WFI,
    csr,
    jal,
    li,
    machine,
    op,
    opi,
    run_user,
)

from synod.ft import ProgramKind, StopReason, TimerInterrupt

BASE = 0x8000_0000
HANDLER = 0x200                          # offset of the trap handler in these programs
MSTATUS, MIE, MTVEC, MSCRATCH, MEPC, MCAUSE, MTVAL, MIP = 0x300, 0x304, 0x305, 0x340, 0x341, 0x342, 0x343, 0x344
MINSTRET, MCYCLE, MINSTRETH, MHARTID, MISA = 0xB02, 0xB00, 0xB82, 0xF14, 0x301
SPIN = jal(0, 0)


def bare(words: list[int], handler: list[int] | None = None, **kwargs: object):  # noqa: ANN201
    """A bare-metal machine: mtvec := HANDLER, then ``words``, then spin;
    ``handler`` (default: mepc += 4; mret) at HANDLER."""
    prologue = [*li(T2, BASE + HANDLER), csr("csrrw", 0, MTVEC, T2)]
    body = prologue + words + [SPIN]
    assert len(body) * 4 <= HANDLER
    handler = handler if handler is not None else skip_handler()
    return machine(body + [0] * (HANDLER // 4 - len(body)) + handler, kind=ProgramKind.BARE_METAL, **kwargs)


def skip_handler() -> list[int]:
    """mepc += 4; mret (resume after the trapping instruction)."""
    return [csr("csrrs", T2, MEPC, 0), opi("addi", T2, T2, 4), csr("csrrw", 0, MEPC, T2), MRET]


def run_to_spin(m, budget: int = 1000) -> None:  # noqa: ANN001
    assert m.run(budget) is StopReason.BUDGET


def test_csr_read_write_set_clear_and_immediate_forms() -> None:
    m = bare([*li(T0, 0x1234_5678), csr("csrrw", 0, MSCRATCH, T0),
              opi("addi", T1, 0, 0xFF), csr("csrrs", A0, MSCRATCH, T1),       # a0 = old; set 0xff
              csr("csrrc", A1, MSCRATCH, T1),                                  # a1 = ..ff; clear 0xff
              csr("csrrwi", A2, MSCRATCH, 21),                                 # a2 = ..00; = 21
              csr("csrrsi", 0, MSCRATCH, 10),                                  # 31
              csr("csrrci", 0, MSCRATCH, 3),                                   # 28
              csr("csrrs", 11 + 2, MSCRATCH, 0)])                              # a3 = 28, no write
    run_to_spin(m)
    assert m.x[A0] == 0x1234_5678
    assert m.x[A1] == 0x1234_56FF
    assert m.x[A2] == 0x1234_5600
    assert m.x[13] == 28
    assert m.csrs.mscratch == 28
    assert m.csrs.mcause == 0, "nothing trapped"


def test_reading_a_read_only_csr_is_legal_writing_it_is_not() -> None:
    m = bare([csr("csrrs", A0, MHARTID, 0), csr("csrrsi", A1, MISA, 0), csr("csrrs", A2, MISA, 0),
              csr("csrrw", 0, MHARTID, A0)])
    run_to_spin(m)
    assert m.x[A0] == 0
    assert m.x[A1] == 0x4010_1100                                              # RV32, I, M, U
    assert m.csrs.mcause == 2
    assert m.csrs.mtval == csr("csrrw", 0, MHARTID, A0), "mtval holds the illegal instruction"


def test_unknown_csr_and_csrrc_with_a_register_on_a_read_only_csr_are_illegal() -> None:
    for word in (csr("csrrs", A0, 0x7C0, 0), csr("csrrc", A0, MHARTID, T0), csr("csrrwi", A0, 0xC00, 1)):
        m = bare([word])
        run_to_spin(m)
        assert m.csrs.mcause == 2, hex(word)


def test_accepted_and_ignored_csrs_read_zero() -> None:
    words = []
    for number in (0x180, 0x3A0, 0x3B0, 0x302, 0x303, 0x306, 0xB03):           # satp, pmp*, deleg, counteren, hpm
        words += [csr("csrrwi", 0, number, 31), csr("csrrs", A0, number, 0), op("or", A1, A1, A0)]
    m = bare(words)
    run_to_spin(m)
    assert m.x[A1] == 0
    assert m.csrs.mcause == 0, "none is illegal"


def test_ecall_ebreak_and_illegal_instruction_trap_with_their_causes() -> None:
    at = BASE + 12                              # after the prologue's 3 instructions
    for word, cause, tval in ((ECALL, 11, 0), (EBREAK, 3, at), (0, 2, 0), (0xFFFF_FFFF, 2, 0xFFFF_FFFF)):
        m = bare([word, opi("addi", A0, 0, 1)])
        run_to_spin(m)
        assert (m.csrs.mcause, m.csrs.mtval, m.csrs.mepc) == (cause, tval, at + 4), "the handler added 4" + hex(word)
        assert m.x[A0] == 1, "the handler resumed after it"


def test_trap_entry_and_mret_move_the_interrupt_enable_stack() -> None:
    # MIE=1, MPIE=0; trap: MPIE := 1, MIE := 0, MPP := M; the handler records mstatus; MRET restores.
    handler = [csr("csrrs", A1, MSTATUS, 0), *skip_handler()]
    m = bare([csr("csrrsi", 0, MSTATUS, 8), ECALL, csr("csrrs", A2, MSTATUS, 0)], handler=handler)
    run_to_spin(m)
    assert m.x[A1] == 0x1880                    # in the handler: MPP = M, MPIE = 1, MIE = 0
    assert m.x[A2] == 0x0088                    # after MRET: MIE = 1 (from MPIE), MPIE = 1, MPP = U (least)


def test_mret_to_user_mode_then_ecall_traps_with_cause_8() -> None:
    user = 0x100
    handler = [csr("csrrs", A0, MCAUSE, 0), csr("csrrs", A1, MSTATUS, 0), SPIN]
    words = [*li(T0, BASE + user), csr("csrrw", 0, MEPC, T0), *li(T0, 0x1800), csr("csrrc", 0, MSTATUS, T0), MRET]
    body = words + [0] * ((user - 12) // 4 - len(words)) + [opi("addi", A2, 0, 5), ECALL]
    m = bare(body, handler=handler)
    run_to_spin(m)
    assert m.x[A0] == 8                         # ECALL from U-mode
    assert m.x[A1] & 0x1800 == 0, "MPP records U"
    assert m.csrs.mepc == BASE + user + 4
    assert m.x[A2] == 5
    assert m.priv == 3


def test_timer_interrupt_needs_mie_and_mtie_and_is_taken_between_instructions() -> None:
    handler = [csr("csrrs", A0, MCAUSE, 0), csr("csrrs", A1, MEPC, 0), MRET]
    m = bare([opi("addi", T0, 0, 0x80), csr("csrrs", 0, MIE, T0), *[opi("addi", A2, A2, 1)] * 10], handler=handler)
    assert m.run(5) is StopReason.BUDGET
    m.deliver(TimerInterrupt())
    assert m.pc == BASE + 20, "MIE is clear: pending, not taken"
    assert m.csrs.mip == 0x80
    m2 = bare([opi("addi", T0, 0, 0x80), csr("csrrs", 0, MIE, T0), csr("csrrsi", 0, MSTATUS, 8),
               *[opi("addi", A2, A2, 1)] * 10], handler=handler)
    assert m2.run(8) is StopReason.BUDGET
    at = m2.pc
    m2.deliver(TimerInterrupt())
    assert m2.pc == BASE + HANDLER, "taken at once"
    assert m2.instret == 8
    m2.run(2)
    assert m2.x[A0] == 0x8000_0007
    assert m2.x[A1] == at


def test_enabling_mie_takes_a_pending_interrupt_after_that_instruction() -> None:
    handler = [csr("csrrs", A0, MEPC, 0), SPIN]
    m = bare([opi("addi", T0, 0, 0x80), csr("csrrs", 0, MIE, T0), opi("addi", A1, 0, 1), csr("csrrsi", 0, MSTATUS, 8),
              opi("addi", A2, 0, 1)], handler=handler)
    assert m.run(4) is StopReason.BUDGET
    m.deliver(TimerInterrupt())
    run_to_spin(m)
    assert m.x[A0] == BASE + 12 + 16, "mepc: the instruction after the CSR write that enabled it"
    assert m.x[A2] == 0


def test_vectored_mtvec_sends_interrupts_to_base_plus_4_cause() -> None:
    vector = [SPIN] * 7 + [csr("csrrs", A0, MCAUSE, 0), SPIN]
    words = [*li(T0, BASE + HANDLER + 1), csr("csrrw", 0, MTVEC, T0), opi("addi", T0, 0, 0x80),
             csr("csrrs", 0, MIE, T0), csr("csrrsi", 0, MSTATUS, 8)]
    m = bare(words, handler=vector)
    assert m.run(9) is StopReason.BUDGET
    m.deliver(TimerInterrupt())
    assert m.pc == BASE + HANDLER + 28
    m.run(1)
    assert m.x[A0] == 0x8000_0007


def test_wfi_waits_until_an_input_and_user_mode_takes_interrupts_whatever_mie() -> None:
    handler = [csr("csrrs", A0, MCAUSE, 0), SPIN]
    m = bare([opi("addi", T0, 0, 0x80), csr("csrrs", 0, MIE, T0), WFI, opi("addi", A1, 0, 1)], handler=handler)
    assert m.run(100) is StopReason.WAITING
    assert m.instret == 6, "WFI retired"
    assert m.run(100) is StopReason.WAITING, "still nothing pending"
    m.deliver(TimerInterrupt())                 # MIE clear in M-mode: wakes, not taken
    m.run(1)
    assert m.x[A1] == 1


def test_interrupt_priority_external_before_timer() -> None:
    from synod.ft import ConsoleInput
    handler = [csr("csrrs", A0, MCAUSE, 0), SPIN]
    m = bare([*li(T0, 0x880), csr("csrrs", 0, MIE, T0)], handler=handler)
    assert m.run(5) is StopReason.BUDGET
    m.deliver(TimerInterrupt())
    m.deliver(ConsoleInput(data=b"x"))          # both pending; MIE clear
    m.run(1)
    m2 = bare([*li(T0, 0x880), csr("csrrs", 0, MIE, T0), csr("csrrsi", 0, MSTATUS, 8)], handler=handler)
    m2.deliver(TimerInterrupt())
    m2.deliver(ConsoleInput(data=b"x"))
    m2.run(10)
    assert m2.x[A0] == 0x8000_000B


def test_counters_count_retired_instructions_and_writes_set_the_next_read() -> None:
    m = bare([csr("csrrs", A0, MINSTRET, 0), opi("addi", 0, 0, 0), csr("csrrs", A1, MINSTRET, 0),
              *li(T0, 1000), csr("csrrw", 0, MINSTRET, T0), csr("csrrs", A2, MINSTRET, 0),
              csr("csrrs", 13, MCYCLE, 0), csr("csrrs", 14, 0xC00, 0), csr("csrrs", 15, MINSTRETH, 0)])
    run_to_spin(m)
    assert m.x[A0] == 3                         # after the 3 prologue instructions
    assert m.x[A1] - m.x[A0] == 2
    assert m.x[A2] == 1000
    assert m.x[14] - m.x[13] == 1               # cycle == mcycle, one instruction later
    assert m.x[15] == 0
    assert m.instret == 3 + 10 + (m.instret - 13), "the machine's own count is not moved by the write"


def test_trap_storm_stops_the_machine_with_a_fault() -> None:
    m = bare([*li(T0, 0x10), csr("csrrw", 0, MTVEC, T0), ECALL])             # mtvec outside RAM
    assert m.run(1000) is StopReason.FAULTED
    assert m.fault is not None
    assert "trap storm" in m.fault.message
    assert m.run(10) is StopReason.FAULTED, "stays stopped"


def test_user_program_ecall_is_a_system_call_and_csrs_are_illegal() -> None:
    m = run_user([opi("addi", A0, 0, 42)])
    assert m.exit_code == 42
    assert m.instret == 1 + 3, "the exit ECALL retires"
    m = machine([csr("csrrs", A0, MSTATUS, 0)])
    assert m.run(10) is StopReason.FAULTED
    assert m.fault is not None and m.fault.mcause == 2
    m = run_user([csr("csrrs", A1, 0xC02, 0), opi("addi", A0, 0, 0)])       # rdinstret is allowed
    assert m.x[A1] == 0
    for word, cause in ((EBREAK, 3), (MRET, 2), (WFI, 2)):
        m = machine([word])
        assert m.run(10) is StopReason.FAULTED
        assert m.fault is not None and m.fault.mcause == cause


def test_accesses_outside_ram_and_devices_are_access_faults_with_the_address() -> None:
    from tests.ft._asm import load, store
    for word, cause in ((load("lw", A1, T0, 0), 5), (store("sw", A1, T0, 0), 7), (load("lb", A1, T1, 0), 5)):
        m = bare([*li(T0, 0x100), *li(T1, 0x1000_0004), word, opi("addi", A0, 0, 1)])
        run_to_spin(m)
        assert m.csrs.mcause == cause
        assert m.csrs.mtval == (0x1000_0004 if word & 0x000F_8000 == T1 << 15 else 0x100)
        assert m.x[A0] == 1, "the handler skipped it; nothing was read or written"
        assert m.x[A1] == 0

# A bare-metal machine-mode program for synod's tests (tests/ft): CSRs,
# traps to mtvec and mret (Privileged spec 20211203, 3.1 and 3.3), a trip
# to U-mode and back, timer interrupts in direct and vectored mode, the
# console device register, misaligned accesses (performed), then access
# faults, an instruction fetch fault, masked interrupts, the counters and
# a machine CSR read from U-mode.
# It reports through the HTIF tohost word: 1 when every check passed, else
# (n << 1) | 1 where n (in s11) is the check that failed.
#
# The harness delivers a TimerInterrupt whenever the machine waits in WFI.
# Everything before `unicorn_stop` is also run under unicorn (whose
# exceptions the test's hook enters into mtvec itself: unicorn reports them
# but does not deliver them); what follows depends on behaviour unicorn
# does not model (access faults as traps, a pending interrupt taken later,
# counters that count instructions, CSR privilege checks in U-mode).
#
# Registers s8-s10 belong to the trap handler; s11 is the check number.

    .equ MMIO, 0x10000000
    .equ CONSOLE_TX, 0x00
    .equ TIMER_ACK, 0x0c
    .equ MSTATUS_MIE, 0x8
    .equ MSTATUS_MPP, 0x1800
    .equ MIE_MTIE, 0x80

    .macro CHECK cond, a, b
    \cond \a, \b, 1f
    j fail
1:
    .endm

    # The last trap's cause must be \cause; then forget it.
    .macro EXPECT_CAUSE cause
    la t3, trap_cause
    lw t2, 0(t3)
    li t1, \cause
    CHECK beq, t1, t2
    li t1, -1
    sw t1, 0(t3)
    .endm

    .section .text.init, "ax"
    .globl _start
_start:
    la sp, stack_top
    la t0, trap_entry
    csrw mtvec, t0
    # Let U-mode reach all memory (one TOR region over everything), then
    # no translation and no delegation: the writes a monitor makes.
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x0f
    csrw pmpcfg0, t0
    csrwi satp, 0
    csrwi medeleg, 0
    csrwi mideleg, 0

check_misa:                             # 1: RV32 (MXL=1) with I, M and U-mode
    li s11, 1
    csrr t0, misa
    li t1, 0x40101100
    CHECK beq, t0, t1

check_read_only:                        # 2: mhartid reads 0; writing it is illegal
    li s11, 2
    csrr t0, mhartid
    CHECK beq, t0, zero
    csrrs t0, mhartid, zero             # rs1 = x0: no write, legal
    csrrsi t0, mhartid, 0               # uimm = 0: no write, legal
    la t3, trap_cause
    lw t2, 0(t3)
    li t1, -1
    CHECK beq, t1, t2
bad_csr_write:
    csrw mhartid, t0
    EXPECT_CAUSE 2
    la t0, bad_csr_write
    lw t1, 0(t0)
    la t3, trap_tval
    lw t2, 0(t3)
    CHECK beq, t1, t2                   # mtval holds the instruction

check_csr_ops:                          # 3: CSRRW/S/C and the immediate forms
    li s11, 3
    li t0, 0x12345678
    csrw mscratch, t0
    li t1, 0xff
    csrrs t2, mscratch, t1
    CHECK beq, t0, t2
    csrrc t2, mscratch, t1
    li t4, 0x123456ff
    CHECK beq, t2, t4
    csrrw t2, mscratch, zero
    li t4, 0x12345600
    CHECK beq, t2, t4
    csrrwi t2, mscratch, 21
    CHECK beq, t2, zero
    csrrsi t2, mscratch, 10
    li t4, 21
    CHECK beq, t2, t4
    csrrci t2, mscratch, 3
    li t4, 31
    CHECK beq, t2, t4
    csrr t2, mscratch
    li t4, 28
    CHECK beq, t2, t4
    csrrw zero, mscratch, t0            # rd = x0: written, not read
    csrr t2, mscratch
    CHECK beq, t0, t2
    csrrci zero, mscratch, 0            # no write
    csrr t2, mscratch
    CHECK beq, t0, t2

check_ecall:                            # 4: ECALL from M-mode, mepc at the ECALL
    li s11, 4
ecall_here:
    ecall
    EXPECT_CAUSE 11
    la t0, ecall_here
    la t3, trap_epc
    lw t2, 0(t3)
    CHECK beq, t0, t2

check_ebreak:                           # 5: EBREAK
    li s11, 5
ebreak_here:
    ebreak
    EXPECT_CAUSE 3
    la t0, ebreak_here
    la t3, trap_epc
    lw t2, 0(t3)
    CHECK beq, t0, t2

check_illegal:                          # 6: illegal instructions
    li s11, 6
    .word 0x00000000                    # all zeros: illegal by design
    EXPECT_CAUSE 2
    .word 0x02051513                    # slli a0, a0, 32: shamt[5] set, reserved in RV32
    EXPECT_CAUSE 2
    csrr t0, 0x7c0                      # a CSR this machine lacks
    EXPECT_CAUSE 2
    .word 0x0000200f                    # MISC-MEM with funct3 2
    EXPECT_CAUSE 2

check_misaligned:                       # 7: misaligned loads and stores are performed
    li s11, 7
    la t0, scratch
    li t1, 0x11223344
    sw t1, 0(t0)
    li t1, 0x55667788
    sw t1, 4(t0)
    lw t2, 1(t0)
    li t4, 0x88112233
    CHECK beq, t2, t4
    lh t2, 3(t0)
    li t4, 0xffff8811
    CHECK beq, t2, t4
    lhu t2, 5(t0)
    li t4, 0x6677
    CHECK beq, t2, t4
    li t1, 0xa1b2c3d4
    sw t1, 3(t0)
    sh t1, 6(t0)
    lw t2, 4(t0)
    li t4, 0xc3d4b2c3
    CHECK beq, t2, t4
    la t3, trap_cause
    lw t2, 0(t3)
    li t1, -1
    CHECK beq, t1, t2                   # and nothing trapped

check_user_mode:                        # 8: MRET to U-mode, ECALL back (cause 8)
    li s11, 8
    li t0, MSTATUS_MPP
    csrc mstatus, t0                    # MPP = U
    la t0, user_code
    csrw mepc, t0
    la a0, back_in_machine_mode         # where the handler resumes after the user's ECALL
    mret
user_code:
    li t5, 0x5a
    ecall                               # cause 8: the handler returns to M-mode at a0
    j fail
back_in_machine_mode:
    EXPECT_CAUSE 8
    li t4, 0x5a
    CHECK beq, t5, t4
    csrr t0, mstatus                    # legal again: we are in M-mode
    la t3, trap_count
    lw t2, 0(t3)
    li t4, 8
    CHECK beq, t2, t4                   # 1 + 1 + 1 + 4 + 1 traps so far

check_console:                          # 9: the console device register
    li s11, 9
    la t0, banner
    li t1, MMIO
1:  lbu t2, 0(t0)
    beqz t2, 2f
    sw t2, CONSOLE_TX(t1)
    addi t0, t0, 1
    j 1b
2:

check_timer_direct:                     # 10: a timer interrupt wakes WFI and traps (direct mode)
    li s11, 10
    li t0, MIE_MTIE
    csrs mie, t0
    csrsi mstatus, MSTATUS_MIE
    wfi
after_wfi:
    la t3, irq_count
    lw t2, 0(t3)
    li t4, 1
    CHECK beq, t2, t4
    EXPECT_CAUSE 0x80000007
    la t0, after_wfi
    la t3, trap_epc
    lw t2, 0(t3)
    CHECK beq, t0, t2                   # mepc: the instruction after WFI
    csrr t0, mstatus
    andi t0, t0, MSTATUS_MIE
    CHECK bne, t0, zero                 # MRET restored MIE

check_timer_vectored:                   # 11: vectored mode: the interrupt enters at base + 4 * 7
    li s11, 11
    la t0, vector_table
    ori t0, t0, 1
    csrw mtvec, t0
    wfi
    la t3, vector_hits
    lw t2, 0(t3)
    li t4, 1
    CHECK beq, t2, t4
    EXPECT_CAUSE 0x80000007
    ecall                               # exceptions still enter at the base
    EXPECT_CAUSE 11
    csrci mstatus, MSTATUS_MIE
    la t0, trap_entry
    csrw mtvec, t0

unicorn_stop:                           # the rest runs under synod only
    .globl unicorn_stop

check_access_faults:                    # 12: outside RAM and the devices: access faults
    li s11, 12
    li t0, 0x100
    lw t1, 0(t0)
    EXPECT_CAUSE 5
    la t3, trap_tval
    lw t2, 0(t3)
    CHECK beq, t0, t2
    sw t1, 4(t0)
    EXPECT_CAUSE 7
    li t0, MMIO
    lb t1, 0(t0)                        # device registers take aligned LW/SW only
    EXPECT_CAUSE 5
    li t0, 0x100
    jalr ra, 0(t0)                      # fetch fault: the handler resumes at ra
    EXPECT_CAUSE 1

check_masked_interrupt:                 # 13: WFI wakes with MIE clear; the trap waits for MIE
    li s11, 13
    la t3, irq_count
    lw s7, 0(t3)
    wfi
    lw t2, 0(t3)
    CHECK beq, t2, s7                   # pending, not taken
    csrsi mstatus, MSTATUS_MIE          # taken right after this instruction
    lw t2, 0(t3)
    CHECK bne, t2, s7
    csrci mstatus, MSTATUS_MIE

check_counters:                         # 14: minstret counts retired instructions; writes set it
    li s11, 14
    csrr t0, minstret
    nop
    nop
    csrr t1, minstret
    sub t1, t1, t0
    li t4, 3
    CHECK beq, t1, t4
    li t0, 1000
    csrw minstret, t0
    csrr t1, minstret                   # "the value read by the following instruction" (Zicsr, 9.1)
    li t4, 1000
    CHECK beq, t1, t4
    csrr t0, mcycle
    csrr t1, cycle
    sub t1, t1, t0
    li t4, 1
    CHECK beq, t1, t4
    csrr t0, minstreth
    CHECK beq, t0, zero

check_user_csr:                         # 15: a machine CSR is illegal from U-mode (CSR bits 9:8)
    li s11, 15
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    la t0, user_csr_code
    csrw mepc, t0
    la a0, back_from_user_csr
    mret
user_csr_code:
    csrr t0, mstatus                    # illegal: the handler skips it, back to U-mode
    li t5, 0x77
    ecall
    j fail
back_from_user_csr:
    EXPECT_CAUSE 8
    li t4, 0x77
    CHECK beq, t5, t4
    la t3, trap_epc
    lw t2, 0(t3)
    la t0, user_csr_code
    addi t0, t0, 8
    CHECK beq, t0, t2                   # the ECALL's address: the CSR read was skipped

pass:
    li t0, 1
    la t1, tohost
    sw t0, 0(t1)
    sw zero, 4(t1)
1:  j 1b

fail:
    slli t0, s11, 1
    ori t0, t0, 1
    la t1, tohost
    sw t0, 0(t1)
    sw zero, 4(t1)
1:  j 1b

# The trap handler (direct mode, and slot 0 of the vector table): records
# mcause, mepc, mtval, counts; skips the trapping instruction; a user ECALL
# returns to M-mode at a0; a fetch fault resumes at ra; an interrupt is
# acknowledged at the device and returns where it struck.
    .align 2
trap_entry:
    csrr s8, mcause
    la s9, trap_cause
    sw s8, 0(s9)
    csrr s10, mepc
    sw s10, 4(s9)
    csrr s10, mtval
    sw s10, 8(s9)
    lw s10, 12(s9)
    addi s10, s10, 1
    sw s10, 12(s9)
    bltz s8, interrupt
    li s10, 8
    beq s8, s10, from_user
    li s10, 1
    beq s8, s10, from_fetch_fault
    csrr s10, mepc
    addi s10, s10, 4
    csrw mepc, s10
    mret
from_user:
    li s10, MSTATUS_MPP
    csrs mstatus, s10
    csrw mepc, a0
    mret
from_fetch_fault:
    csrw mepc, ra
    mret
interrupt:
    li s10, MMIO
    sw zero, TIMER_ACK(s10)
    la s9, irq_count
    lw s10, 0(s9)
    addi s10, s10, 1
    sw s10, 0(s9)
    mret

    .align 6
vector_table:
    j trap_entry                        # 0: every exception
    .rept 6
    j fail
    .endr
    j vectored_timer                    # 7: machine timer interrupt
    .rept 4
    j fail
    .endr
vectored_timer:
    la s9, vector_hits
    lw s10, 0(s9)
    addi s10, s10, 1
    sw s10, 0(s9)
    j trap_entry

    .section .rodata
banner:
    .string "bare-metal: hello from M-mode\n"

    .data
    .align 4
trap_cause: .word -1
trap_epc:   .word 0
trap_tval:  .word 0
trap_count: .word 0
irq_count:  .word 0
vector_hits: .word 0
scratch:    .space 16

    .section .tohost, "aw", @progbits
    .align 6
    .globl tohost
tohost: .dword 0
    .align 6
    .globl fromhost
fromhost: .dword 0

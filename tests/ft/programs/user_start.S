# Entry of synod's user-level test programs: own stack, .bss cleared, main(), exit(main's value).
    .section .text.entry
    .globl _start
_start:
    la    sp, stack_top
    la    a0, bss_begin
    la    a1, bss_end
clear_bss:
    bgeu  a0, a1, run_main
    sw    zero, 0(a0)
    addi  a0, a0, 4
    j     clear_bss
run_main:
    call  main
    li    a7, 93                # exit(a0)
    ecall
halt:
    j     halt

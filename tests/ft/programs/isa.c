/* Every RV32IM instruction a user program can run, with the edge cases of
   the Unprivileged ISA (20191213): division by zero and overflow (7.2),
   shifts by 0 and 31 and amounts masked to 5 bits, writes to x0, sign
   extension of LB/LH, the high products, misaligned loads and stores,
   JALR clearing bit 0, self-modifying code after FENCE.I. Each group
   prints a line (a hash over a table of operands, and the edge cases in
   full), so any disagreement between emulators names its instruction.
   Written for synod's differential tests (tests/ft). */
#include "rt.h"

/* gcc 12 selects the rv32im multilib only for -march=rv32im, which lacks Zifencei: name it here. */
#define FENCE_I ".option push\n.option arch, +zifencei\nfence.i\n.option pop\n"

static const u32 V[] = {
    0, 1, 2, 7, 31, 32, 33, 0x7fffffff, 0x80000000, 0x80000001, 0xffffffff, 0xfffffff9,
    0x0000ffff, 0x00008000, 0x12345678, 0xdeadbeef, 0xfffff800, 0x55555555,
};
#define NV (sizeof V / sizeof V[0])

#define RR(name) \
    static u32 op_##name(u32 a, u32 b) { u32 r; asm volatile(#name " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b)); return r; }
RR(add) RR(sub) RR(sll) RR(slt) RR(sltu) RR(xor) RR(srl) RR(sra) RR(or) RR(and)
RR(mul) RR(mulh) RR(mulhsu) RR(mulhu) RR(div) RR(divu) RR(rem) RR(remu)

typedef u32 (*binop)(u32, u32);
static const struct { const char *name; binop f; } RR_OPS[] = {
    {"add", op_add}, {"sub", op_sub}, {"sll", op_sll}, {"slt", op_slt}, {"sltu", op_sltu}, {"xor", op_xor},
    {"srl", op_srl}, {"sra", op_sra}, {"or", op_or}, {"and", op_and}, {"mul", op_mul}, {"mulh", op_mulh},
    {"mulhsu", op_mulhsu}, {"mulhu", op_mulhu}, {"div", op_div}, {"divu", op_divu}, {"rem", op_rem},
    {"remu", op_remu},
};

static void register_register(void) {
    for (u32 k = 0; k < sizeof RR_OPS / sizeof RR_OPS[0]; k++) {
        u32 h = 2166136261u;
        for (u32 i = 0; i < NV; i++)
            for (u32 j = 0; j < NV; j++) h = fnv(h, RR_OPS[k].f(V[i], V[j]));
        put_str(RR_OPS[k].name); put_str(" "); put_hex(h); put_nl();
    }
    put_str("div/0 "); put_hex(op_div(7, 0)); put_hex(op_div(0x80000000, 0)); put_hex(op_div(0, 0)); put_nl();
    put_str("divu/0 "); put_hex(op_divu(7, 0)); put_hex(op_divu(0xffffffff, 0)); put_nl();
    put_str("rem/0 "); put_hex(op_rem(7, 0)); put_hex(op_rem(0xfffffff9, 0)); put_nl();
    put_str("remu/0 "); put_hex(op_remu(7, 0)); put_hex(op_remu(0x80000000, 0)); put_nl();
    put_str("overflow "); put_hex(op_div(0x80000000, 0xffffffff)); put_hex(op_rem(0x80000000, 0xffffffff)); put_nl();
    put_str("signs "); put_hex(op_div(0xfffffff9, 2)); put_hex(op_rem(0xfffffff9, 2)); put_hex(op_div(7, 0xfffffffe));
    put_hex(op_rem(7, 0xfffffffe)); put_nl();
    put_str("high "); put_hex(op_mulh(0xffffffff, 0xffffffff)); put_hex(op_mulhsu(0xffffffff, 0xffffffff));
    put_hex(op_mulhu(0xffffffff, 0xffffffff)); put_hex(op_mulh(0x80000000, 0x80000000));
    put_hex(op_mulhsu(0x80000000, 0xffffffff)); put_nl();
    put_str("shift31 "); put_hex(op_sll(1, 31)); put_hex(op_srl(0x80000000, 31)); put_hex(op_sra(0x80000000, 31));
    put_hex(op_sll(1, 32)); put_hex(op_sra(0x80000000, 63)); put_nl();
}

#define IMM(op, imm) \
    for (u32 i = 0; i < NV; i++) { u32 r; asm volatile(#op " %0, %1, %2" : "=r"(r) : "r"(V[i]), "i"(imm)); h = fnv(h, r); }
#define IMMS(op) IMM(op, -2048) IMM(op, -7) IMM(op, -1) IMM(op, 0) IMM(op, 1) IMM(op, 5) IMM(op, 0x555) IMM(op, 2047)
#define SHIFTS(op) IMM(op, 0) IMM(op, 1) IMM(op, 7) IMM(op, 16) IMM(op, 31)

static void register_immediate(void) {
    u32 h;
    h = 2166136261u; IMMS(addi) put_str("addi "); put_hex(h); put_nl();
    h = 2166136261u; IMMS(slti) put_str("slti "); put_hex(h); put_nl();
    h = 2166136261u; IMMS(sltiu) put_str("sltiu "); put_hex(h); put_nl();
    h = 2166136261u; IMMS(xori) put_str("xori "); put_hex(h); put_nl();
    h = 2166136261u; IMMS(ori) put_str("ori "); put_hex(h); put_nl();
    h = 2166136261u; IMMS(andi) put_str("andi "); put_hex(h); put_nl();
    h = 2166136261u; SHIFTS(slli) put_str("slli "); put_hex(h); put_nl();
    h = 2166136261u; SHIFTS(srli) put_str("srli "); put_hex(h); put_nl();
    h = 2166136261u; SHIFTS(srai) put_str("srai "); put_hex(h); put_nl();
    u32 a, b, c, d;
    asm volatile("lui %0, 0xfffff\n lui %1, 0x80000\n lui %2, 0\n lui %3, 0x12345" : "=r"(a), "=r"(b), "=r"(c), "=r"(d));
    put_str("lui "); put_hex(a); put_hex(b); put_hex(c); put_hex(d); put_nl();
    asm volatile("1: auipc %0, 0x1\n la %1, 1b\n 2: auipc %2, 0\n la %3, 2b" : "=r"(a), "=r"(b), "=r"(c), "=r"(d));
    put_str("auipc "); put_hex(a - b); put_hex(c - d); put_nl();
}

static void zero_register(void) {
    static u32 word = 0x11223344;
    u32 a, b, c, d, e;
    asm volatile("add x0, %1, %1\n mv %0, x0" : "=r"(a) : "r"(V[14]));
    asm volatile("addi x0, x0, 5\n lui x0, 0x12345\n mv %0, zero" : "=r"(b));
    asm volatile("lw x0, 0(%1)\n mv %0, x0" : "=r"(c) : "r"(&word));
    asm volatile("jal x0, 1f\n 1: auipc x0, 7\n mul x0, %1, %1\n div x0, %1, x0\n mv %0, x0" : "=r"(d) : "r"(V[15]));
    asm volatile("sub %0, x0, %1" : "=r"(e) : "r"(V[1]));
    put_str("x0 "); put_hex(a); put_hex(b); put_hex(c); put_hex(d); put_hex(e); put_nl();
}

static unsigned char buf[64] __attribute__((aligned(16)));

static void loads_and_stores(void) {
    for (u32 i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 37 + 0x7d);
    u32 h = 2166136261u;
    for (u32 off = 0; off < 16; off++) {
        unsigned char *p = buf + 8 + off;
        u32 r1, r2, r3, r4, r5, r6;
        asm volatile("lb %0, 0(%6)\n lbu %1, 0(%6)\n lh %2, 1(%6)\n lhu %3, -1(%6)\n lw %4, 2(%6)\n lw %5, -7(%6)"
                     : "=&r"(r1), "=&r"(r2), "=&r"(r3), "=&r"(r4), "=&r"(r5), "=&r"(r6) : "r"(p));
        h = fnv(fnv(fnv(fnv(fnv(fnv(h, r1), r2), r3), r4), r5), r6);
        if (off < 4) { put_str("load "); put_hex(r1); put_hex(r2); put_hex(r3); put_hex(r4); put_hex(r5); put_nl(); }
    }
    put_str("loads "); put_hex(h); put_nl();
    for (u32 off = 0; off < 8; off++) {
        unsigned char *p = buf + 16 + off;
        asm volatile("sb %0, 0(%1)\n sh %0, 3(%1)\n sw %0, -5(%1)\n sw %0, 9(%1)" : : "r"(V[15] + off), "r"(p) : "memory");
    }
    h = 2166136261u;
    for (u32 i = 0; i < sizeof buf; i++) h = fnv(h, buf[i]);
    put_str("stores "); put_hex(h); put_nl();
}

#define BR(op, a, b) ({ u32 t; asm volatile(#op " %1, %2, 1f\n li %0, 0\n j 2f\n1: li %0, 1\n2:" \
                                             : "=r"(t) : "r"(a), "r"(b)); t; })
#define BRANCH_HASH(op) \
    h = 2166136261u; \
    for (u32 i = 0; i < NV; i++) for (u32 j = 0; j < NV; j++) h = fnv(h, BR(op, V[i], V[j])); \
    put_str(#op " "); put_hex(h); put_nl();

static void branches_and_jumps(void) {
    u32 h;
    BRANCH_HASH(beq) BRANCH_HASH(bne) BRANCH_HASH(blt) BRANCH_HASH(bge) BRANCH_HASH(bltu) BRANCH_HASH(bgeu)
    u32 link, label, skipped = 0;
    asm volatile("jal %0, 1f\n 1: la %1, 1b" : "=r"(link), "=r"(label));
    put_str("jal "); put_hex(link - label); put_nl();
    asm volatile("la t0, 1f\n jalr %0, 1(t0)\n li %1, 1\n 1: la %2, 1b" : "=r"(link), "+r"(skipped), "=r"(label) : : "t0");
    put_str("jalr "); put_hex(label - link); put_hex(skipped); put_nl();
    asm volatile("fence\n fence rw, rw\n" FENCE_I ::: "memory");
}

typedef u32 (*stub_fn)(u32);
/* addi a0, a0, 1 ; ret -- patched to addi a0, a0, 100 below */
static u32 stub[2] __attribute__((aligned(16))) = {0x00150513, 0x00008067};

static void self_modifying_code(void) {
    stub_fn f = (stub_fn)(void *)stub;
    u32 before = f(5);
    stub[0] = 0x06450513;                       /* addi a0, a0, 100 */
    asm volatile(FENCE_I ::: "memory");
    u32 after = f(5);
    put_str("smc "); put_hex(before); put_hex(after); put_nl();
}

static u64 fib64(u32 n) { u64 a = 0, b = 1; while (n--) { u64 t = a + b; a = b; b = t; } return a; }

int main(void) {
    register_register();
    register_immediate();
    zero_register();
    loads_and_stores();
    branches_and_jumps();
    self_modifying_code();
    u64 big = fib64(90);
    put_str("fib90 "); put_dec((i64)big); put_str("/7 "); put_dec((i64)(big / 7)); put_str("%1000 ");
    put_dec((i64)(big % 1000)); put_dec(-(i64)(big >> 3) / 3); put_nl();
    return 7;
}

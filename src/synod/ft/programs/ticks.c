/* Bare metal, interrupt-driven: a timer interrupt handler counts ticks
   while the program computes; every tick it prints how much work was done
   since the last one. When the interrupts come depends on the outside
   world (the primary's clock): a backup prints the same lines only if it
   takes each interrupt at the primary's instruction. 100 ticks, then exit. */
#define MMIO ((volatile unsigned *)0x10000000)
#define CONSOLE_TX (0x00 / 4)
#define TIMER_ACK (0x0C / 4)
#define TICKS 100

static volatile unsigned ticks;

static void put_str(const char *s) { while (*s) MMIO[CONSOLE_TX] = (unsigned char)*s++; }
static void put_uint(unsigned v) {
    char b[12]; int i = 11; b[i] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    put_str(b + i);
}

__attribute__((interrupt("machine"), aligned(4))) static void on_trap(void) {
    unsigned cause;
    __asm__ volatile("csrr %0, mcause" : "=r"(cause));
    if (cause == 0x80000007u) {          /* machine timer interrupt */
        MMIO[TIMER_ACK] = 1;
        ticks++;
    }
}

int main(void) {
    __asm__ volatile("csrw mtvec, %0" :: "r"(on_trap));
    __asm__ volatile("csrs mie, %0" :: "r"(1u << 7));      /* MTIE */
    __asm__ volatile("csrs mstatus, %0" :: "r"(1u << 3));  /* MIE */
    unsigned seen = 0, work = 0, h = 2166136261u;
    while (seen < TICKS) {
        h = (h ^ work) * 16777619u;
        work++;
        if (ticks != seen) {
            seen = ticks;
            put_str("tick ");
            put_uint(seen);
            put_str(" work ");
            put_uint(work);
            put_str("\n");
            work = 0;
        }
    }
    put_str("hash ");
    put_uint(h);
    put_str("\n");
    return 0;
}

/* A tiny runtime for synod's test programs: Linux RISC-V system calls
   (read 63, write 64, exit 93) and number printing. No libc. */
#ifndef RT_H
#define RT_H
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;

static inline long syscall3(long number, long a, long b, long c) {
    register long a0 asm("a0") = a;
    register long a1 asm("a1") = b;
    register long a2 asm("a2") = c;
    register long a7 asm("a7") = number;
    asm volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}
static inline long sys_read(int fd, void *buf, long len) { return syscall3(63, fd, (long)buf, len); }
static inline long sys_write(int fd, const void *buf, long len) { return syscall3(64, fd, (long)buf, len); }

static long str_len(const char *s) { long n = 0; while (s[n]) n++; return n; }
static void put_str(const char *s) { sys_write(1, s, str_len(s)); }
static void put_hex(u32 v) {
    char b[9];
    for (int i = 7; i >= 0; i--) { b[i] = "0123456789abcdef"[v & 15]; v >>= 4; }
    b[8] = ' ';
    sys_write(1, b, 9);
}
static void put_dec(i64 v) {
    char b[24]; int i = 23; int neg = v < 0; u64 u = neg ? -(u64)v : (u64)v;
    b[i] = ' ';
    do { b[--i] = '0' + (char)(u % 10); u /= 10; } while (u);
    if (neg) b[--i] = '-';
    sys_write(1, b + i, 24 - i);
}
static void put_nl(void) { sys_write(1, "\n", 1); }
static u32 fnv(u32 h, u32 v) {
    for (int i = 0; i < 4; i++) { h ^= (v >> (8 * i)) & 0xff; h *= 16777619u; }
    return h;
}
#endif

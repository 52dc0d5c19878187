/* Linux-style system calls of synod's emulated machine (and qemu-riscv32). */
#ifndef SYNOD_SYS_H
#define SYNOD_SYS_H

static inline long sys3(long n, long a, long b, long c) {
    register long a0 __asm__("a0") = a, a1 __asm__("a1") = b, a2 __asm__("a2") = c, a7 __asm__("a7") = n;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}
static inline long sys_read(int fd, void *buf, long n) { return sys3(63, fd, (long)buf, n); }
static inline long sys_write(int fd, const void *buf, long n) { return sys3(64, fd, (long)buf, n); }

static long str_len(const char *s) { long n = 0; while (s[n]) n++; return n; }
static void put_str(const char *s) { sys_write(1, s, str_len(s)); }
static void put_uint(unsigned long v) {
    char buf[12]; int i = 11; buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    put_str(buf + i);
}
#endif

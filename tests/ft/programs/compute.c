/* A compute-bound program for synod's tests and benchmarks/ft_emulator.py:
   a prime sieve, CRC-32 (bitwise), a shell sort of pseudo-random words, an
   integer matrix product and 64-bit arithmetic through libgcc, SCALE times
   over (default 1: a few million instructions). Prints one checksum per
   part; exits 0. */
#include "rt.h"

#ifndef SCALE
#define SCALE 1
#endif
#define SIEVE_N 20000
#define WORDS 2048
#define MAT 20

static unsigned char composite[SIEVE_N];
static u32 words[WORDS];
static i32 a[MAT][MAT], b[MAT][MAT], c[MAT][MAT];

static u32 xorshift(u32 *s) { u32 x = *s; x ^= x << 13; x ^= x >> 17; x ^= x << 5; return *s = x; }

static u32 sieve(void) {
    for (u32 i = 0; i < SIEVE_N; i++) composite[i] = 0;
    u32 count = 0;
    for (u32 i = 2; i < SIEVE_N; i++) {
        if (composite[i]) continue;
        count++;
        for (u32 j = i * i; j < SIEVE_N; j += i) composite[j] = 1;
    }
    return count;
}

static u32 crc32(const unsigned char *p, u32 n) {
    u32 crc = 0xffffffffu;
    for (u32 i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

static u32 sort(u32 seed) {
    for (u32 i = 0; i < WORDS; i++) words[i] = xorshift(&seed);
    for (u32 gap = WORDS / 2; gap; gap /= 2)
        for (u32 i = gap; i < WORDS; i++) {
            u32 v = words[i], j = i;
            for (; j >= gap && words[j - gap] > v; j -= gap) words[j] = words[j - gap];
            words[j] = v;
        }
    u32 h = 2166136261u;
    for (u32 i = 0; i < WORDS; i += 7) h = fnv(h, words[i]);
    return h ^ (words[0] <= words[WORDS - 1]);
}

static u32 matmul(u32 seed) {
    for (int i = 0; i < MAT; i++)
        for (int j = 0; j < MAT; j++) { a[i][j] = (i32)(xorshift(&seed) % 201) - 100; b[i][j] = (i32)(xorshift(&seed) % 17) - 8; }
    for (int i = 0; i < MAT; i++)
        for (int j = 0; j < MAT; j++) {
            i32 s = 0;
            for (int k = 0; k < MAT; k++) s += a[i][k] * b[k][j];
            c[i][j] = s;
        }
    u32 h = 2166136261u;
    for (int i = 0; i < MAT; i++) for (int j = 0; j < MAT; j++) h = fnv(h, (u32)c[i][j]);
    return h;
}

static u64 wide(u32 seed) {
    u64 acc = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 300; i++) {
        u64 x = ((u64)xorshift(&seed) << 32) | xorshift(&seed);
        acc = acc * 6364136223846793005ull + x;
        acc ^= acc / (x % 1000003 + 1);
        acc += (u64)((i64)acc % 977);
    }
    return acc;
}

int main(void) {
    u32 primes = 0, crc = 0, sorted = 0, mat = 0; u64 w = 0;
    for (u32 round = 0; round < SCALE; round++) {
        primes += sieve();
        crc ^= crc32(composite, SIEVE_N);
        sorted ^= sort(round + 1);
        mat ^= matmul(round + 7);
        w ^= wide(round + 3);
    }
    put_str("primes "); put_dec(primes); put_str("crc "); put_hex(crc); put_str("sort "); put_hex(sorted);
    put_str("mat "); put_hex(mat); put_str("wide "); put_hex((u32)(w >> 32)); put_hex((u32)w); put_nl();
    return 0;
}

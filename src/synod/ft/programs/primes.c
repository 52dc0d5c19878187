/* Compute-bound: count primes below N by trial division, a progress line
   every 1,000 primes (argument-free: N is fixed). */
#include "sys.h"

#define N 60000

int main(void) {
    unsigned long count = 0, sum = 0;
    for (unsigned long n = 2; n < N; n++) {
        int prime = 1;
        for (unsigned long d = 2; d * d <= n; d++)
            if (n % d == 0) { prime = 0; break; }
        if (!prime) continue;
        count++;
        sum = sum * 31 + n;
        if (count % 1000 == 0) {
            put_str("primes ");
            put_uint(count);
            put_str(" at ");
            put_uint(n);
            put_str("\n");
        }
    }
    put_str("count=");
    put_uint(count);
    put_str(" hash=");
    put_uint(sum & 0xffffffffUL);
    put_str("\n");
    return 0;
}

/* One line per read: its number, its length and its bytes. Which bytes
   one read returns depends on when the input arrived: a replica that
   delivered the input at other instructions prints other lines. */
#include "sys.h"

static char buf[256];

int main(void) {
    unsigned long k = 0, spin = 0;
    for (;;) {
        long n = sys_read(0, buf, sizeof buf);
        if (n <= 0) break;
        k++;
        put_str("[");
        put_uint(k);
        put_str("] ");
        put_uint((unsigned long)n);
        put_str(": ");
        sys_write(1, buf, n);
        put_str("\n");
        for (unsigned long i = 0; i < 2000; i++) spin += i ^ k;   /* work between reads */
    }
    put_str("reads=");
    put_uint(k);
    put_str(" spin=");
    put_uint(spin & 0xffff);
    put_str("\n");
    return 0;
}

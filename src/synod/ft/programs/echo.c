/* Console input back in upper case, then the byte count: output that
   depends only on the bytes read, not on how they arrive. */
#include "sys.h"

static char buf[256];

int main(void) {
    unsigned long total = 0;
    for (;;) {
        long n = sys_read(0, buf, sizeof buf);
        if (n <= 0) break;
        for (long i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] = (char)(buf[i] - 32);
        sys_write(1, buf, n);
        total += (unsigned long)n;
    }
    put_str("bytes=");
    put_uint(total);
    put_str("\n");
    return 0;
}

/* Packets in, packets out (the machine's network device, fd 3): each
   packet comes back reversed; an empty packet ends the program, which
   then prints how many it answered. */
#include "sys.h"

static char buf[2048];

int main(void) {
    unsigned long n = 0;
    for (;;) {
        long len = sys_read(3, buf, sizeof buf);
        if (len <= 0) break;
        for (long i = 0, j = len - 1; i < j; i++, j--) { char t = buf[i]; buf[i] = buf[j]; buf[j] = t; }
        sys_write(3, buf, len);
        n++;
    }
    put_str("packets=");
    put_uint(n);
    put_str("\n");
    return 0;
}

/* Output-heavy: 20,000 numbered lines, each with a running hash. */
#include "sys.h"

int main(void) {
    unsigned long h = 2166136261UL;
    for (unsigned long i = 1; i <= 20000; i++) {
        h = (h ^ i) * 16777619UL;
        put_str("line ");
        put_uint(i);
        put_str(" ");
        put_uint(h & 0xffffffffUL);
        put_str("\n");
    }
    return 0;
}

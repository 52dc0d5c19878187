/* Reads standard input to its end (read(0, ...) in chunks), writes it back
   ROT13-ed with line numbers, then counts of lines, words and bytes; exits
   with the line count. Exercises read, write and exit against qemu-user. */
#include "rt.h"

static char in[4096];
static char line_buf[256];

int main(void) {
    long total = 0, lines = 0, words = 0, in_word = 0, col = 0;
    for (;;) {
        long n = sys_read(0, in, 100);           /* small reads: many system calls */
        if (n <= 0) break;
        for (long i = 0; i < n; i++) {
            char ch = in[i];
            char out = ch;
            if (ch >= 'a' && ch <= 'z') out = (char)('a' + (ch - 'a' + 13) % 26);
            if (ch >= 'A' && ch <= 'Z') out = (char)('A' + (ch - 'A' + 13) % 26);
            if (col < (long)sizeof line_buf) line_buf[col++] = out;
            int space = ch == ' ' || ch == '\n' || ch == '\t';
            if (!space && !in_word) words++;
            in_word = !space;
            if (ch == '\n') {
                lines++;
                put_dec(lines);
                sys_write(1, line_buf, col);
                col = 0;
            }
        }
        total += n;
    }
    if (col) sys_write(1, line_buf, col);
    put_str("\nlines "); put_dec(lines); put_str("words "); put_dec(words); put_str("bytes "); put_dec(total); put_nl();
    return (int)lines;
}

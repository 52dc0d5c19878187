/* Bare metal: read the disk by DMA, 8 sectors at a time, and print an
   FNV-1a hash of it. Right after each read command the program writes into
   the very buffer the read is filling (the race of the paper's section
   3.5): what it then finds there depends on when the completion came, so
   only a backup that delivers the completion at the primary's instruction
   (through the bounce buffer) prints the primary's hash. */
#define MMIO ((volatile unsigned *)0x10000000)
#define CONSOLE_TX (0x00 / 4)
#define BLK_SECTOR (0x20 / 4)
#define BLK_ADDR (0x24 / 4)
#define BLK_COUNT (0x28 / 4)
#define BLK_CMD (0x2C / 4)
#define BLK_STATUS (0x30 / 4)
#define BLK_SECTORS (0x34 / 4)

static unsigned char buf[8 * 512];

static void put_str(const char *s) { while (*s) MMIO[CONSOLE_TX] = (unsigned char)*s++; }
static void put_uint(unsigned v) {
    char b[12]; int i = 11; b[i] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    put_str(b + i);
}

int main(void) {
    unsigned sectors = MMIO[BLK_SECTORS], hash = 2166136261u, polls = 0;
    for (unsigned s = 0; s + 8 <= sectors; s += 8) {
        MMIO[BLK_SECTOR] = s;
        MMIO[BLK_ADDR] = (unsigned)buf;
        MMIO[BLK_COUNT] = 8;
        MMIO[BLK_CMD] = 1;
        for (int i = 0; i < 64; i++) buf[i] = (unsigned char)(0xA0 + i);   /* races the DMA */
        while (MMIO[BLK_STATUS] == 1) polls++;
        for (unsigned i = 0; i < sizeof buf; i++) hash = (hash ^ buf[i]) * 16777619u;
        put_str("sectors ");
        put_uint(s + 8);
        put_str(" hash ");
        put_uint(hash);
        put_str("\n");
    }
    put_str("done polls>0 ");
    put_uint(polls > 0);
    put_str("\n");
    return 0;
}

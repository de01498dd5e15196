/* vm-exit N: ends the guest with status N through qemu's isa-debug-exit port
 * (qemu then exits with 2N+1). Linked statically: it runs in the bare guest. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

int main(int argc, char** argv) {
    int status = argc > 1 ? atoi(argv[1]) : 0;
    if (ioperm(0xf4, 4, 1) != 0) {
        perror("vm-exit: ioperm");
        return 1;
    }
    outb((unsigned char)status, 0xf4);
    return 0;
}

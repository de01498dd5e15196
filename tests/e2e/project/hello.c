/* A tiny program the e2e build test compiles and installs inside the sandbox. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("hello from mbx-e2e (uid %d, euid %d)\n", (int)getuid(), (int)geteuid());
    return 0;
}

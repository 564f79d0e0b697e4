/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replays fuzz inputs (files named on the command line) through LLVMFuzzerTestOneInput without
 * libFuzzer, so the seed corpus runs in every build, including the sanitizer build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
main(int argc, char **argv)
{
    static uint8_t buf[1 << 16];
    FILE          *f;
    size_t         n;
    int            i;

    for (i = 1; i < argc; i++) {
        f = fopen(argv[i], "rb");
        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        printf("%s: %zu bytes replayed\n", argv[i], n);
    }
    return 0;
}

/* test_alloc.c — src/core/err.c er_malloc_big / er_calloc_big: aligned (64 bytes below 2 MiB,
 * 2 MiB from 2 MiB on), writable over the whole size, zeroed by er_calloc_big, freed with
 * free() (make sanitize checks the pairing), NULL with EASYREC_ERR_NOMEM on overflow, and
 * from 2 MiB on advised for transparent huge pages (VmFlags "hg" in /proc/self/smaps).
 */
#include <stdint.h>
#include <unistd.h>

#include "check.h"
#include "core/err.h"

#define MIB ((size_t)1 << 20)

static const size_t sizes[] = {0, 1, 63, 64, 4096, 100000, 2 * MIB - 1, 2 * MIB, 2 * MIB + 1, 5 * MIB + 3};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static size_t want_align(size_t bytes) { return bytes >= 2 * MIB ? 2 * MIB : 64; }

TEST(malloc_big_aligned_writable) {
    for (size_t i = 0; i < NSIZES; i++) {
        unsigned char *p = er_malloc_big(sizes[i], 1);
        REQUIRE(p != NULL);
        CHECK_EQ_INT((uintptr_t)p % want_align(sizes[i]), 0);
        memset(p, 0xA5, sizes[i]);
        if (sizes[i]) CHECK(p[0] == 0xA5 && p[sizes[i] - 1] == 0xA5);
        memset(p, 0, sizes[i]);
        size_t nz = 0;
        for (size_t k = 0; k < sizes[i]; k++) nz += p[k] != 0;
        CHECK_EQ_INT(nz, 0);
        free(p);
    }
}

TEST(calloc_big_zeroed) {
    for (size_t i = 0; i < NSIZES; i++) {
        /* dirty the heap first, so a zeroed block is not just fresh pages */
        unsigned char *d = er_malloc_big(sizes[i], 1);
        REQUIRE(d != NULL);
        memset(d, 0xFF, sizes[i]);
        free(d);
        float *p = er_calloc_big(sizes[i] / sizeof(float) + 1, sizeof(float));
        REQUIRE(p != NULL);
        size_t n = sizes[i] / sizeof(float) + 1, nz = 0;
        CHECK_EQ_INT((uintptr_t)p % want_align(n * sizeof(float)), 0);
        for (size_t k = 0; k < n; k++) nz += p[k] != 0.0f;
        CHECK_EQ_INT(nz, 0);
        p[n - 1] = 1.0f;
        free(p);
    }
}

TEST(big_overflow_is_nomem) {
    CHECK(er_malloc_big(SIZE_MAX / 2, 4) == NULL);
    CHECK(strstr(easyrec_last_error(), "overflow") != NULL);
    CHECK(er_malloc_big(SIZE_MAX - MIB, 1) == NULL); /* rounding up to 2 MiB overflows */
    CHECK(er_calloc_big(SIZE_MAX / 8, 16) == NULL);
}

/* VmFlags of the mapping that holds address a ("" when not found). */
static int vmflags_of(uintptr_t a, char *out, size_t cap) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int in = 0, found = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = a >= lo && a < hi;
        } else if (in && !strncmp(line, "VmFlags:", 8)) {
            snprintf(out, cap, "%s", line + 8);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

TEST(big_advised_for_huge_pages) {
    if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK)) SKIP("no transparent huge pages in this kernel");
    unsigned char *p = er_malloc_big(4 * MIB, 1);
    REQUIRE(p != NULL);
    char flags[512];
    REQUIRE(vmflags_of((uintptr_t)p + MIB, flags, sizeof flags) == 0);
    CHECK(strstr(flags, " hg") != NULL);
    free(p);
    unsigned char *s = er_malloc_big(MIB, 1); /* below 2 MiB: no advice */
    REQUIRE(s != NULL);
    free(s);
}

int main(void) {
    return check_run((check_case[]){{"malloc_big_aligned_writable", malloc_big_aligned_writable},
                                    {"calloc_big_zeroed", calloc_big_zeroed},
                                    {"big_overflow_is_nomem", big_overflow_is_nomem},
                                    {"big_advised_for_huge_pages", big_advised_for_huge_pages}},
                     4);
}

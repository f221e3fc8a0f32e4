/* fuzz_import.c — libFuzzer target for the untrusted text `data import` and `profile` read:
 * interaction files as delimited text and as JSON lines (src/data/import_read.c), LLM answers
 * checked for each task (er_prof_validate) and Retry-After values (er_llm_retry_after).
 * Seeds: fuzz/seeds/fuzz_import/.
 */
#include <stdlib.h>
#include <string.h>

#include "data/import.h"
#include "profile/llm.h"
#include "profile/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int json = 0; json < 2; json++) {
        er_raw_inter r;
        if (!er_import_parse((const char *)data, size, "fuzz", json, &r)) {
            for (size_t k = 0; k < r.n; k++)
                if (r.rows[k].u < 0 || r.rows[k].u >= r.n_user_names || r.rows[k].i < 0 || r.rows[k].i >= r.n_item_names)
                    abort();
            er_raw_inter_free(&r);
        }
    }
    for (int t = 0; t < 3; t++) {
        char *a, *b;
        const char *why = er_prof_validate((er_profile_task)t, (const char *)data, size, &a, &b);
        if (!why && (!a || !*a)) abort();
        free(a);
        free(b);
    }
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = 0;
        (void)er_llm_retry_after(s, 1.7e9);
        free(s);
    }
    return 0;
}

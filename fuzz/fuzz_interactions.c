/* fuzz_interactions.c — libFuzzer target for the interaction inputs of `easyrec eval`
 * (src/data/interactions.c): TSV / RecBole .inter parsing, dense id mapping (numeric and
 * string modes) and CSR building; then the same bytes as a scipy sparse pickle through
 * er_csr_from_sparse. Every id must land inside the reported shape and every CSR row must be
 * strictly ascending. Seeds: fuzz/seeds/fuzz_interactions/.
 */
#include <stdlib.h>

#include "data/interactions.h"

static void check_csr(const er_csr *m) {
    if (m->indptr[0] != 0 || (size_t)m->indptr[m->nrows] != m->nnz) __builtin_trap();
    for (int32_t r = 0; r < m->nrows; r++)
        for (int64_t p = m->indptr[r]; p < m->indptr[r + 1]; p++)
            if (m->indices[p] < 0 || m->indices[p] >= m->ncols || (p > m->indptr[r] && m->indices[p] <= m->indices[p - 1]))
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    er_inter_file f;
    if (er_inter_file_parse((const char *)data, size, "fuzz", &f) == 0) {
        er_idmap u, i;
        int32_t *rows[1], *cols[1];
        if (er_interactions_map(&f, 1, &u, &i, rows, cols) == 0) {
            for (size_t k = 0; k < f.n; k++)
                if (rows[0][k] < 0 || rows[0][k] >= u.n || cols[0][k] < 0 || cols[0][k] >= i.n) __builtin_trap();
            er_csr m;
            if (er_csr_from_pairs(u.n, i.n, rows[0], cols[0], f.n, &m) == 0) {
                check_csr(&m);
                er_csr_free(&m);
            }
            free(rows[0]);
            free(cols[0]);
            er_idmap_free(&u);
            er_idmap_free(&i);
        }
        er_inter_file_free(&f);
    }
    er_sparse s;
    if (er_sparse_pickle_parse(data, size, "fuzz", &s) == 0) {
        er_csr m;
        if (er_csr_from_sparse(&s, &m) == 0) {
            check_csr(&m);
            er_csr_free(&m);
        }
        er_sparse_free(&s);
    }
    return 0;
}

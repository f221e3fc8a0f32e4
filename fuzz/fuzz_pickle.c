/* fuzz_pickle.c — libFuzzer target for the pickle VM (src/io/pickle.c) and the scipy
 * sparse reader built on it (src/io/sparse_pickle.c).
 *
 * A loaded tree is walked (depth- and node-bounded: pickles may hold cycles) touching
 * every field, so ASan sees any dangling or half-built node; then the same bytes go
 * through er_sparse_pickle_parse, whose every index must lie inside the reported shape.
 * Seeds: fuzz/seeds/fuzz_pickle/ (scipy pickles of protocols 2-5, a torch data.pkl).
 */
#include <string.h>

#include "io/pickle.h"
#include "io/sparse_pickle.h"

static size_t walk(const er_pobj *o, int depth, size_t budget) {
    if (!o || depth > 64 || budget == 0) return budget;
    budget--;
    volatile size_t sink = o->len + (size_t)o->type;
    if (o->s) sink += strlen(o->s);
    (void)sink;
    for (size_t i = 0; i < o->n && budget; i++) budget = walk(o->items[i], depth + 1, budget);
    if (o->type == ER_P_CALL) {
        budget = walk(o->fn, depth + 1, budget);
        budget = walk(o->args, depth + 1, budget);
        budget = walk(o->state, depth + 1, budget);
        budget = walk(o->dict, depth + 1, budget);
        budget = walk(o->list, depth + 1, budget);
    }
    return budget;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    er_pickle *p;
    er_pobj *root;
    if (er_pickle_load(data, size, "fuzz", &p, &root) == 0) {
        walk(root, 0, 100000);
        er_pickle_dict_get(root, "data");
        er_pickle_call_name(root);
        er_pickle_free(p);
    }
    er_sparse m;
    if (er_sparse_pickle_parse(data, size, "fuzz", &m) == 0) {
        for (size_t k = 0; k < m.nnz; k++)
            if (m.row[k] < 0 || m.row[k] >= m.nrows || m.col[k] < 0 || m.col[k] >= m.ncols) __builtin_trap();
        er_sparse_free(&m);
    }
    return 0;
}

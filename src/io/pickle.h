/* pickle.h — a small, safe Python pickle reader (protocols 2–5, the opcodes torch.save and
 * scipy/numpy pickles use). Builds a tree of er_pobj values; globals (GLOBAL/STACK_GLOBAL)
 * become ER_P_GLOBAL nodes and REDUCE/NEWOBJ/BUILD become ER_P_CALL/ER_P_BUILD nodes that
 * the caller interprets (torchbin.c: _rebuild_tensor_v2, OrderedDict; later the sparse
 * matrix reader: numpy _reconstruct + __setstate__). Persistent ids (torch storages) become
 * ER_P_PERSID. Nothing is ever executed. Unknown opcodes, stack underflow, oversized
 * lengths and memo misuse are errors, never crashes.
 */
#ifndef ER_PICKLE_H
#define ER_PICKLE_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ER_P_NONE, ER_P_BOOL, ER_P_INT, ER_P_FLOAT, ER_P_STR, ER_P_BYTES, ER_P_TUPLE, ER_P_LIST,
    ER_P_DICT, ER_P_GLOBAL, ER_P_CALL, ER_P_BUILD, ER_P_PERSID, ER_P_MARK
} er_ptype;

typedef struct er_pobj er_pobj;
struct er_pobj {
    er_ptype type;
    int64_t i;              /* INT, BOOL */
    double f;               /* FLOAT */
    char *s;                /* STR/BYTES data (NUL-terminated), GLOBAL "module.name" */
    size_t len;             /* STR/BYTES length */
    er_pobj **items;        /* TUPLE/LIST items; DICT keys/values interleaved; CALL: [callable, args]; BUILD: [obj, state]; PERSID: [pid] */
    size_t n, cap;
};

typedef struct er_pickle er_pickle; /* owns every er_pobj it produced */

/* Parse one pickle. On success *root points into *out_p (free with pickle_free). */
int pickle_load(const uint8_t *buf, size_t len, const char *what, er_pickle **out_p, er_pobj **root);
void pickle_free(er_pickle *p);
/* Dict lookup by string key; NULL if absent or not a dict. */
er_pobj *pickle_dict_get(const er_pobj *dict, const char *key);
#endif

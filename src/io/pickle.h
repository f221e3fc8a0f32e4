/* pickle.h — a small, safe Python pickle reader (protocols 2–5, the opcodes torch.save and
 * scipy/numpy pickles use).
 *
 * er_pickle_load() runs the pickle virtual machine over a byte buffer and returns the tree of
 * er_pobj values it built. Nothing is ever executed or imported: GLOBAL/STACK_GLOBAL become
 * ER_P_GLOBAL nodes ("module.name"), REDUCE/NEWOBJ become ER_P_CALL nodes (callable + args)
 * that the caller interprets (torchbin.c: _rebuild_tensor_v2, OrderedDict; sparse_pickle.c:
 * numpy _reconstruct + __setstate__), BUILD records its state on the object it applies to,
 * and persistent ids (torch storages) become ER_P_PERSID nodes.
 *
 * Unknown opcodes, stack underflow, oversized lengths, memo misuse and exceeded limits are
 * errors (EASYREC_ERR_FORMAT / _UNSUPPORTED / _NOMEM with a message naming the input and
 * the byte offset), never crashes. Memory use is bounded by a small multiple of the input
 * length plus the limits below. The VM never recurses, so nesting depth costs no C stack;
 * pickles with reference cycles (a list appended to itself) load fine, and callers walk
 * only the fixed shapes they expect.
 */
#ifndef ER_PICKLE_H
#define ER_PICKLE_H
#include <stddef.h>
#include <stdint.h>

/* Hard limits: inputs that exceed them are rejected. */
#define ER_PICKLE_MAX_OBJECTS (1u << 23) /* values created (~100 bytes each) */
#define ER_PICKLE_MAX_MARKS 1024         /* MARKs open at once (container nesting) */
#define ER_PICKLE_MAX_MEMO (1u << 24)    /* highest memo index + 1 */

typedef enum {
    ER_P_NONE, ER_P_BOOL, ER_P_INT, ER_P_FLOAT, ER_P_STR, ER_P_BYTES, ER_P_TUPLE, ER_P_LIST,
    ER_P_DICT, ER_P_SET, ER_P_GLOBAL, ER_P_CALL, ER_P_PERSID
} er_ptype;

typedef struct er_pobj er_pobj;
struct er_pobj {
    er_ptype type;
    union {
        int64_t i;              /* INT, BOOL (0/1) */
        double f;               /* FLOAT */
    };
    char *s;                    /* STR/BYTES data (NUL-terminated; STR is raw UTF-8, py2
                                   BINSTRING raw bytes), GLOBAL "module.name" */
    size_t len;                 /* STR/BYTES length in bytes (excluding the NUL) */
    er_pobj **items;            /* TUPLE/LIST/SET items; DICT keys and values interleaved
                                   (k0, v0, k1, v1, ...); PERSID: [pid] */
    size_t n, cap;              /* items used / allocated */
    /* CALL only: fn(*args) from REDUCE/NEWOBJ/NEWOBJ_EX (kwargs must be empty) */
    er_pobj *fn, *args;         /* args is a TUPLE */
    er_pobj *state;             /* BUILD's state (obj.__setstate__(state)), NULL if none */
    er_pobj *dict;              /* DICT of SETITEM(S) applied to the object, or NULL */
    er_pobj *list;              /* LIST of APPEND(S) applied to the object, or NULL */
};

typedef struct er_pickle er_pickle; /* owns every er_pobj it produced */

/* Parse one pickle (up to its STOP opcode; trailing bytes are ignored like Python does).
 * `what` names the input in messages. buf is not referenced after return. On success
 * *root points into *out_p; both stay valid until er_pickle_free(*out_p). On failure
 * *out_p and *root are NULL. */
int er_pickle_load(const uint8_t *buf, size_t len, const char *what, er_pickle **out_p, er_pobj **root);
void er_pickle_free(er_pickle *p);

/* Value of a string key in a DICT (the last one if the pickle set it twice); NULL if
 * absent or dict is not a DICT. */
er_pobj *er_pickle_dict_get(const er_pobj *dict, const char *key);
/* "module.name" of the callable of a CALL whose callable is a GLOBAL, else NULL. */
const char *er_pickle_call_name(const er_pobj *o);
/* 1 if o is a GLOBAL named `name` ("module.name"). */
int er_pickle_is_global(const er_pobj *o, const char *name);
/* Item i of a TUPLE/LIST, NULL if o is not one or i is out of range. */
er_pobj *er_pickle_item(const er_pobj *o, size_t i);
/* Python type name of a node for messages ("tuple", "dict", ...). */
const char *er_pickle_type_name(const er_pobj *o);

#endif

/* pickle.c — the pickle virtual machine behind pickle.h: a safe subset of Python's
 * Unpickler (Lib/pickle.py, protocols 2–5).
 *
 * Implements the binary opcodes torch.save (protocol 2) and numpy/scipy pickles (protocols
 * 2–5) emit, plus the cheap set/frozenset/stack opcodes. Deliberately not implemented: the
 * text opcodes of protocols 0–1 (INT, STRING, PUT, GET, ...), the extension registry (EXT*),
 * text persistent ids (PERSID) and out-of-band buffers (NEXT_BUFFER): each is reported as
 * an unsupported opcode. Nothing is executed: callables become ER_P_CALL nodes.
 *
 * Structure follows CPython's Unpickler: one value stack, a mark stack of stack heights
 * (MARK opens a frame; TUPLE/LIST/DICT/APPENDS/SETITEMS close it), and a memo indexed by
 * BINPUT/MEMOIZE. Values live in fixed-size arena blocks so er_pickle_free never recurses.
 * Every length read from the input is checked against the bytes left before it is used.
 */
#include "io/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* ---- arena ---------------------------------------------------------------------------- */

#define PK_BLOCK 256

typedef struct pk_block {
    struct pk_block *next;
    size_t used;
    er_pobj objs[PK_BLOCK];
} pk_block;

struct er_pickle {
    pk_block *blocks; /* newest first */
    size_t nobj;
};

void er_pickle_free(er_pickle *p) {
    if (!p) return;
    pk_block *b = p->blocks;
    while (b) {
        for (size_t i = 0; i < b->used; i++) {
            free(b->objs[i].s);
            free(b->objs[i].items);
        }
        pk_block *next = b->next;
        free(b);
        b = next;
    }
    free(p);
}

/* ---- machine state -------------------------------------------------------------------- */

typedef struct {
    er_pickle *p;
    const uint8_t *buf;
    size_t len, pos, op_pos; /* op_pos: offset of the opcode being executed (messages) */
    const char *what;
    er_pobj **stack;
    size_t sp, scap;
    size_t marks[ER_PICKLE_MAX_MARKS];
    size_t nmarks;
    er_pobj **memo;
    size_t memo_cap, memo_count; /* memo_count: distinct indices set (MEMOIZE uses it) */
} pk_vm;

__attribute__((format(printf, 3, 4))) static int pk_fail(pk_vm *vm, int code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return er_error(code, "%s: pickle offset %zu: %s", vm->what, vm->op_pos, msg);
}

static er_pobj *pk_new(pk_vm *vm, er_ptype type) {
    er_pickle *p = vm->p;
    if (p->nobj >= ER_PICKLE_MAX_OBJECTS) {
        pk_fail(vm, EASYREC_ERR_NOMEM, "more than %u values (limit)", ER_PICKLE_MAX_OBJECTS);
        return NULL;
    }
    if (!p->blocks || p->blocks->used == PK_BLOCK) {
        pk_block *b = malloc(sizeof(*b));
        if (!b) {
            pk_fail(vm, EASYREC_ERR_NOMEM, "out of memory");
            return NULL;
        }
        b->used = 0;
        b->next = p->blocks;
        p->blocks = b;
    }
    er_pobj *o = &p->blocks->objs[p->blocks->used++];
    memset(o, 0, sizeof(*o));
    o->type = type;
    p->nobj++;
    return o;
}

static int pk_items_push(pk_vm *vm, er_pobj *o, er_pobj *x) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4;
        er_pobj **items = er_reallocarray(o->items, cap, sizeof(*items));
        if (!items) return pk_fail(vm, EASYREC_ERR_NOMEM, "out of memory");
        o->items = items;
        o->cap = cap;
    }
    o->items[o->n++] = x;
    return EASYREC_OK;
}

static int pk_push(pk_vm *vm, er_pobj *o) {
    if (!o) return EASYREC_ERR_NOMEM; /* pk_new failed: error already set */
    if (vm->sp == vm->scap) {
        size_t cap = vm->scap ? vm->scap * 2 : 64;
        er_pobj **s = er_reallocarray(vm->stack, cap, sizeof(*s));
        if (!s) return pk_fail(vm, EASYREC_ERR_NOMEM, "out of memory");
        vm->stack = s;
        vm->scap = cap;
    }
    vm->stack[vm->sp++] = o;
    return EASYREC_OK;
}

/* Height of the stack below which the current MARK frame may not pop. */
static size_t pk_base(const pk_vm *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }

static er_pobj *pk_pop(pk_vm *vm) {
    if (vm->sp <= pk_base(vm)) {
        pk_fail(vm, EASYREC_ERR_FORMAT, "stack underflow");
        return NULL;
    }
    return vm->stack[--vm->sp];
}

static er_pobj *pk_top(pk_vm *vm) {
    if (vm->sp <= pk_base(vm)) {
        pk_fail(vm, EASYREC_ERR_FORMAT, "stack underflow");
        return NULL;
    }
    return vm->stack[vm->sp - 1];
}

/* Close the innermost MARK frame: *first is the stack index of its first item. */
static int pk_pop_mark(pk_vm *vm, size_t *first) {
    if (!vm->nmarks) return pk_fail(vm, EASYREC_ERR_FORMAT, "no MARK on the stack");
    *first = vm->marks[--vm->nmarks];
    return EASYREC_OK;
}

/* ---- input ---------------------------------------------------------------------------- */

static int pk_read(pk_vm *vm, size_t n, const uint8_t **out) {
    if (n > vm->len - vm->pos)
        return pk_fail(vm, EASYREC_ERR_FORMAT, "truncated: needs %zu bytes, %zu left", n, vm->len - vm->pos);
    *out = vm->buf + vm->pos;
    vm->pos += n;
    return EASYREC_OK;
}

/* Little-endian unsigned integer of n <= 8 bytes. */
static int pk_read_uint(pk_vm *vm, size_t n, uint64_t *v) {
    const uint8_t *b = NULL;
    int rc = pk_read(vm, n, &b);
    if (rc) return rc;
    *v = 0;
    for (size_t i = 0; i < n; i++) *v |= (uint64_t)b[i] << (8 * i);
    return EASYREC_OK;
}

/* A STR/BYTES value of n bytes copied from the input (n checked against what is left). */
static int pk_push_bytes(pk_vm *vm, er_ptype type, uint64_t n) {
    const uint8_t *b = NULL;
    if (n > vm->len - vm->pos)
        return pk_fail(vm, EASYREC_ERR_FORMAT, "string of %llu bytes runs past the end (%zu left)",
                       (unsigned long long)n, vm->len - vm->pos);
    int rc = pk_read(vm, (size_t)n, &b);
    if (rc) return rc;
    er_pobj *o = pk_new(vm, type);
    if (!o) return EASYREC_ERR_NOMEM;
    o->s = er_mallocarray((size_t)n + 1, 1);
    if (!o->s) return pk_fail(vm, EASYREC_ERR_NOMEM, "out of memory");
    memcpy(o->s, b, (size_t)n);
    o->s[n] = 0;
    o->len = (size_t)n;
    return pk_push(vm, o);
}

static er_pobj *pk_new_global(pk_vm *vm, const char *mod, size_t mlen, const char *name, size_t nlen) {
    er_pobj *o = pk_new(vm, ER_P_GLOBAL);
    if (!o) return NULL;
    o->s = er_mallocarray(mlen + nlen + 2, 1); /* lengths are bounded by the input size */
    if (!o->s) {
        pk_fail(vm, EASYREC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(o->s, mod, mlen);
    o->s[mlen] = '.';
    memcpy(o->s + mlen + 1, name, nlen);
    o->s[mlen + 1 + nlen] = 0;
    o->len = mlen + 1 + nlen;
    return o;
}

/* One newline-terminated line of GLOBAL's text operand. */
static int pk_read_line(pk_vm *vm, const char **s, size_t *n) {
    const uint8_t *start = vm->buf + vm->pos;
    const uint8_t *nl = memchr(start, '\n', vm->len - vm->pos);
    if (!nl) return pk_fail(vm, EASYREC_ERR_FORMAT, "GLOBAL operand not terminated by a newline");
    *s = (const char *)start;
    *n = (size_t)(nl - start);
    vm->pos += *n + 1;
    return EASYREC_OK;
}

/* ---- opcodes that build containers ---------------------------------------------------- */

/* Move stack[first..sp) into the items of o (TUPLE, LIST, SET or DICT) and pop them. */
static int pk_take_items(pk_vm *vm, er_pobj *o, size_t first) {
    for (size_t k = first; k < vm->sp; k++) {
        int rc = pk_items_push(vm, o, vm->stack[k]);
        if (rc) return rc;
    }
    vm->sp = first;
    return EASYREC_OK;
}

/* TUPLE1..3 (n fixed) or TUPLE/LIST/DICT/FROZENSET from the innermost MARK. */
static int pk_collect(pk_vm *vm, er_ptype type, int fixed_n) {
    size_t first = 0;
    if (fixed_n >= 0) {
        if (vm->sp - pk_base(vm) < (size_t)fixed_n) return pk_fail(vm, EASYREC_ERR_FORMAT, "stack underflow");
        first = vm->sp - (size_t)fixed_n;
    } else {
        int rc = pk_pop_mark(vm, &first);
        if (rc) return rc;
    }
    if (type == ER_P_DICT && (vm->sp - first) % 2)
        return pk_fail(vm, EASYREC_ERR_FORMAT, "DICT with an odd number of items");
    er_pobj *o = pk_new(vm, type);
    if (!o) return EASYREC_ERR_NOMEM;
    int rc = pk_take_items(vm, o, first);
    return rc ? rc : pk_push(vm, o);
}

/* The container that APPEND(S)/SETITEM(S)/ADDITEMS mutate: obj itself, or for an object
 * built by a call (OrderedDict(), a list subclass) a DICT/LIST created on demand. */
static int pk_target(pk_vm *vm, er_pobj *obj, er_ptype want, er_pobj **out) {
    static const char *ops[] = {[ER_P_LIST] = "APPEND", [ER_P_DICT] = "SETITEM", [ER_P_SET] = "ADDITEMS"};
    *out = NULL;
    if (obj->type == want) {
        *out = obj;
        return EASYREC_OK;
    }
    if (obj->type != ER_P_CALL || want == ER_P_SET)
        return pk_fail(vm, EASYREC_ERR_FORMAT, "%s applied to a %s", ops[want], er_pickle_type_name(obj));
    er_pobj **slot = want == ER_P_DICT ? &obj->dict : &obj->list;
    if (!*slot && !(*slot = pk_new(vm, want))) return EASYREC_ERR_NOMEM;
    *out = *slot;
    return EASYREC_OK;
}

/* APPEND/SETITEM (n = 1 or 2 values on top) or APPENDS/SETITEMS/ADDITEMS (n = 0: the
 * values above the innermost MARK) add to the object just below those values. */
static int pk_add_to(pk_vm *vm, er_ptype want, size_t n) {
    size_t first = 0;
    int rc;
    if (n) {
        if (vm->sp - pk_base(vm) < n + 1) return pk_fail(vm, EASYREC_ERR_FORMAT, "stack underflow");
        first = vm->sp - n;
    } else {
        if ((rc = pk_pop_mark(vm, &first))) return rc;
        if (first <= pk_base(vm)) return pk_fail(vm, EASYREC_ERR_FORMAT, "stack underflow");
    }
    if (want == ER_P_DICT && (vm->sp - first) % 2)
        return pk_fail(vm, EASYREC_ERR_FORMAT, "SETITEMS with an odd number of items");
    er_pobj *t;
    if ((rc = pk_target(vm, vm->stack[first - 1], want, &t))) return rc;
    return pk_take_items(vm, t, first);
}

/* REDUCE / NEWOBJ / NEWOBJ_EX: fn(*args) becomes a CALL node. */
static int pk_call(pk_vm *vm, int with_kwargs) {
    er_pobj *kw = with_kwargs ? pk_pop(vm) : NULL;
    if (with_kwargs && !kw) return EASYREC_ERR_FORMAT;
    if (kw && !(kw->type == ER_P_DICT && kw->n == 0))
        return pk_fail(vm, EASYREC_ERR_UNSUPPORTED, "NEWOBJ_EX with keyword arguments");
    er_pobj *args = pk_pop(vm);
    er_pobj *fn = args ? pk_pop(vm) : NULL;
    if (!fn) return EASYREC_ERR_FORMAT;
    if (args->type != ER_P_TUPLE)
        return pk_fail(vm, EASYREC_ERR_FORMAT, "call arguments are a %s, not a tuple", er_pickle_type_name(args));
    er_pobj *o = pk_new(vm, ER_P_CALL);
    if (!o) return EASYREC_ERR_NOMEM;
    o->fn = fn;
    o->args = args;
    return pk_push(vm, o);
}

static int pk_build(pk_vm *vm) {
    er_pobj *state = pk_pop(vm);
    er_pobj *obj = state ? pk_top(vm) : NULL;
    if (!obj) return EASYREC_ERR_FORMAT;
    if (obj->type != ER_P_CALL)
        return pk_fail(vm, EASYREC_ERR_FORMAT, "BUILD applied to a %s", er_pickle_type_name(obj));
    if (obj->state) return pk_fail(vm, EASYREC_ERR_UNSUPPORTED, "BUILD applied twice to one object");
    obj->state = state;
    return EASYREC_OK;
}

/* ---- memo ----------------------------------------------------------------------------- */

static int pk_memo_put(pk_vm *vm, uint64_t idx) {
    er_pobj *top = pk_top(vm);
    if (!top) return EASYREC_ERR_FORMAT;
    /* a pickler numbers memo entries 0, 1, 2, ...: an index can never exceed the input
     * length, which bounds the memo's memory by the input size */
    if (idx >= ER_PICKLE_MAX_MEMO || idx > vm->len)
        return pk_fail(vm, EASYREC_ERR_FORMAT, "memo index %llu out of range", (unsigned long long)idx);
    if (idx >= vm->memo_cap) {
        size_t cap = vm->memo_cap ? vm->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        er_pobj **m = er_reallocarray(vm->memo, cap, sizeof(*m));
        if (!m) return pk_fail(vm, EASYREC_ERR_NOMEM, "out of memory");
        memset(m + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof(*m));
        vm->memo = m;
        vm->memo_cap = cap;
    }
    if (!vm->memo[idx]) vm->memo_count++;
    vm->memo[idx] = top;
    return EASYREC_OK;
}

static int pk_memo_get(pk_vm *vm, uint64_t idx) {
    if (idx >= vm->memo_cap || !vm->memo[idx])
        return pk_fail(vm, EASYREC_ERR_FORMAT, "memo index %llu was never stored", (unsigned long long)idx);
    return pk_push(vm, vm->memo[idx]);
}

/* ---- the machine ---------------------------------------------------------------------- */

/* Execute one opcode. Sets *done on STOP. */
static int pk_step(pk_vm *vm, int *done, er_pobj **result) {
    const uint8_t *b = NULL;
    uint64_t v;
    int rc;
    vm->op_pos = vm->pos;
    if ((rc = pk_read(vm, 1, &b))) return rc;
    uint8_t op = b[0];
    switch (op) {
    case 0x80: /* PROTO */
        if ((rc = pk_read_uint(vm, 1, &v))) return rc;
        if (v > 5) return pk_fail(vm, EASYREC_ERR_UNSUPPORTED, "pickle protocol %llu", (unsigned long long)v);
        return EASYREC_OK;
    case 0x95: /* FRAME: a length hint; the frame must fit in what is left */
        if ((rc = pk_read_uint(vm, 8, &v))) return rc;
        if (v > vm->len - vm->pos) return pk_fail(vm, EASYREC_ERR_FORMAT, "FRAME of %llu bytes runs past the end", (unsigned long long)v);
        return EASYREC_OK;
    case '.': /* STOP */
        if (!(*result = pk_pop(vm))) return EASYREC_ERR_FORMAT;
        *done = 1;
        return EASYREC_OK;
    case '(': /* MARK */
        if (vm->nmarks == ER_PICKLE_MAX_MARKS) return pk_fail(vm, EASYREC_ERR_FORMAT, "more than %d nested MARKs (limit)", ER_PICKLE_MAX_MARKS);
        vm->marks[vm->nmarks++] = vm->sp;
        return EASYREC_OK;
    case '0': /* POP: an empty frame pops its MARK instead (as CPython does) */
        if (vm->sp > pk_base(vm)) vm->sp--;
        else if ((rc = pk_pop_mark(vm, &vm->sp))) return rc;
        return EASYREC_OK;
    case '1': { /* POP_MARK */
        size_t first = 0;
        if ((rc = pk_pop_mark(vm, &first))) return rc;
        vm->sp = first;
        return EASYREC_OK;
    }
    case '2': { /* DUP */
        er_pobj *t = pk_top(vm);
        return t ? pk_push(vm, t) : EASYREC_ERR_FORMAT;
    }
    case 'N': return pk_push(vm, pk_new(vm, ER_P_NONE));
    case 0x88: case 0x89: { /* NEWTRUE, NEWFALSE */
        er_pobj *o = pk_new(vm, ER_P_BOOL);
        if (o) o->i = op == 0x88;
        return pk_push(vm, o);
    }
    case 'J': case 'K': case 'M': { /* BININT (int32), BININT1 (uint8), BININT2 (uint16) */
        size_t n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        if ((rc = pk_read_uint(vm, n, &v))) return rc;
        er_pobj *o = pk_new(vm, ER_P_INT);
        if (o) o->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
        return pk_push(vm, o);
    }
    case 0x8a: case 0x8b: { /* LONG1, LONG4: little-endian two's complement of n bytes */
        if ((rc = pk_read_uint(vm, op == 0x8a ? 1 : 4, &v))) return rc;
        if (op == 0x8b && v > INT32_MAX) return pk_fail(vm, EASYREC_ERR_FORMAT, "negative LONG4 length");
        if (v > 8) return pk_fail(vm, EASYREC_ERR_UNSUPPORTED, "integer of %llu bytes (more than 64 bits)", (unsigned long long)v);
        uint64_t u = 0;
        if ((rc = pk_read_uint(vm, (size_t)v, &u))) return rc;
        if (v > 0 && v < 8 && (u >> (8 * v - 1)) & 1) u |= ~(uint64_t)0 << (8 * v); /* sign-extend */
        er_pobj *o = pk_new(vm, ER_P_INT);
        if (o) o->i = (int64_t)u;
        return pk_push(vm, o);
    }
    case 'G': { /* BINFLOAT: big-endian IEEE double */
        if ((rc = pk_read(vm, 8, &b))) return rc;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = u << 8 | b[i];
        er_pobj *o = pk_new(vm, ER_P_FLOAT);
        if (o) memcpy(&o->f, &u, sizeof(o->f));
        return pk_push(vm, o);
    }
    case 0x8c: case 'U': case 'C': /* SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES */
        if ((rc = pk_read_uint(vm, 1, &v))) return rc;
        return pk_push_bytes(vm, op == 'C' ? ER_P_BYTES : ER_P_STR, v);
    case 'X': case 'B': /* BINUNICODE, BINBYTES: uint32 length */
        if ((rc = pk_read_uint(vm, 4, &v))) return rc;
        return pk_push_bytes(vm, op == 'B' ? ER_P_BYTES : ER_P_STR, v);
    case 'T': /* BINSTRING: int32 length */
        if ((rc = pk_read_uint(vm, 4, &v))) return rc;
        if (v > INT32_MAX) return pk_fail(vm, EASYREC_ERR_FORMAT, "negative BINSTRING length");
        return pk_push_bytes(vm, ER_P_STR, v);
    case 0x8d: case 0x8e: case 0x96: /* BINUNICODE8, BINBYTES8, BYTEARRAY8: uint64 length */
        if ((rc = pk_read_uint(vm, 8, &v))) return rc;
        return pk_push_bytes(vm, op == 0x8d ? ER_P_STR : ER_P_BYTES, v);
    case ')': return pk_push(vm, pk_new(vm, ER_P_TUPLE));
    case ']': return pk_push(vm, pk_new(vm, ER_P_LIST));
    case '}': return pk_push(vm, pk_new(vm, ER_P_DICT));
    case 0x8f: return pk_push(vm, pk_new(vm, ER_P_SET)); /* EMPTY_SET */
    case 0x85: case 0x86: case 0x87: return pk_collect(vm, ER_P_TUPLE, op - 0x84); /* TUPLE1..3 */
    case 't': return pk_collect(vm, ER_P_TUPLE, -1);
    case 'l': return pk_collect(vm, ER_P_LIST, -1);
    case 'd': return pk_collect(vm, ER_P_DICT, -1);
    case 0x91: return pk_collect(vm, ER_P_SET, -1); /* FROZENSET */
    case 'a': return pk_add_to(vm, ER_P_LIST, 1);   /* APPEND */
    case 'e': return pk_add_to(vm, ER_P_LIST, 0);   /* APPENDS */
    case 's': return pk_add_to(vm, ER_P_DICT, 2);   /* SETITEM */
    case 'u': return pk_add_to(vm, ER_P_DICT, 0);   /* SETITEMS */
    case 0x90: return pk_add_to(vm, ER_P_SET, 0);   /* ADDITEMS */
    case 'c': { /* GLOBAL "module\nname\n" */
        const char *mod, *name;
        size_t ml, nl;
        if ((rc = pk_read_line(vm, &mod, &ml)) || (rc = pk_read_line(vm, &name, &nl))) return rc;
        er_pobj *g = pk_new_global(vm, mod, ml, name, nl);
        return g ? pk_push(vm, g) : EASYREC_ERR_NOMEM;
    }
    case 0x93: { /* STACK_GLOBAL: module and name strings on the stack */
        er_pobj *name = pk_pop(vm);
        er_pobj *mod = name ? pk_pop(vm) : NULL;
        if (!mod) return EASYREC_ERR_FORMAT;
        if (mod->type != ER_P_STR || name->type != ER_P_STR)
            return pk_fail(vm, EASYREC_ERR_FORMAT, "STACK_GLOBAL needs two strings");
        er_pobj *g = pk_new_global(vm, mod->s, mod->len, name->s, name->len);
        return g ? pk_push(vm, g) : EASYREC_ERR_NOMEM;
    }
    case 'R': case 0x81: return pk_call(vm, 0); /* REDUCE, NEWOBJ */
    case 0x92: return pk_call(vm, 1);           /* NEWOBJ_EX */
    case 'b': return pk_build(vm);              /* BUILD */
    case 'Q': { /* BINPERSID */
        er_pobj *pid = pk_pop(vm);
        if (!pid) return EASYREC_ERR_FORMAT;
        er_pobj *o = pk_new(vm, ER_P_PERSID);
        if (!o) return EASYREC_ERR_NOMEM;
        if ((rc = pk_items_push(vm, o, pid))) return rc;
        return pk_push(vm, o);
    }
    case 'q': /* BINPUT */
        if ((rc = pk_read_uint(vm, 1, &v))) return rc;
        return pk_memo_put(vm, v);
    case 'r': /* LONG_BINPUT */
        if ((rc = pk_read_uint(vm, 4, &v))) return rc;
        return pk_memo_put(vm, v);
    case 0x94: return pk_memo_put(vm, vm->memo_count); /* MEMOIZE */
    case 'h': /* BINGET */
        if ((rc = pk_read_uint(vm, 1, &v))) return rc;
        return pk_memo_get(vm, v);
    case 'j': /* LONG_BINGET */
        if ((rc = pk_read_uint(vm, 4, &v))) return rc;
        return pk_memo_get(vm, v);
    case 0x98: /* READONLY_BUFFER: in-band buffers are plain bytes here */
        return pk_top(vm) ? EASYREC_OK : EASYREC_ERR_FORMAT;
    default:
        return pk_fail(vm, EASYREC_ERR_UNSUPPORTED, "unsupported or unknown opcode 0x%02x", op);
    }
}

int er_pickle_load(const uint8_t *buf, size_t len, const char *what, er_pickle **out_p, er_pobj **root) {
    *out_p = NULL;
    *root = NULL;
    pk_vm vm = {.buf = buf, .len = len, .what = what ? what : "pickle"};
    vm.p = er_calloc(1, sizeof(*vm.p));
    if (!vm.p) return EASYREC_ERR_NOMEM;
    int rc = EASYREC_OK, done = 0;
    er_pobj *result = NULL;
    while (!done && rc == EASYREC_OK) {
        if (vm.pos == vm.len) {
            vm.op_pos = vm.pos;
            rc = pk_fail(&vm, EASYREC_ERR_FORMAT, "truncated: ends without STOP");
            break;
        }
        rc = pk_step(&vm, &done, &result);
    }
    free(vm.stack);
    free(vm.memo);
    if (rc) {
        er_pickle_free(vm.p);
        return rc;
    }
    *out_p = vm.p;
    *root = result;
    return EASYREC_OK;
}

/* ---- accessors ------------------------------------------------------------------------ */

er_pobj *er_pickle_dict_get(const er_pobj *dict, const char *key) {
    if (!dict || dict->type != ER_P_DICT) return NULL;
    size_t klen = strlen(key);
    for (size_t i = dict->n; i >= 2; i -= 2) {
        const er_pobj *k = dict->items[i - 2];
        if (k->type == ER_P_STR && k->len == klen && !memcmp(k->s, key, klen)) return dict->items[i - 1];
    }
    return NULL;
}

const char *er_pickle_call_name(const er_pobj *o) {
    if (!o || o->type != ER_P_CALL || o->fn->type != ER_P_GLOBAL) return NULL;
    return o->fn->s;
}

int er_pickle_is_global(const er_pobj *o, const char *name) {
    return o && o->type == ER_P_GLOBAL && !strcmp(o->s, name);
}

er_pobj *er_pickle_item(const er_pobj *o, size_t i) {
    if (!o || (o->type != ER_P_TUPLE && o->type != ER_P_LIST) || i >= o->n) return NULL;
    return o->items[i];
}

const char *er_pickle_type_name(const er_pobj *o) {
    static const char *names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list",
                                  "dict", "set", "global", "object", "persistent id"};
    if (!o) return "nothing";
    return (size_t)o->type < sizeof names / sizeof names[0] ? names[o->type] : "?";
}

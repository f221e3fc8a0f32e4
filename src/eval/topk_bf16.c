/* topk_bf16.c — exact top-K from a bf16 scan plus fp32 rescoring (topk_bf16.h).
 *
 * Per query q: a_i = bf16 score of every item (er_gemm_bf16: q and v_i rounded to bf16,
 * products summed in fp32). Its distance to the exact score s_i is at most
 *   e_i = qe ||v_i|| + ea,
 *   qe = delta ||q|| + 2^-125 sqrt(D),   ea = 2^-124 (sqrt(D) ||q|| + D + 1),
 *   delta = 2^-7 + 2^-14 + 2 (D + 4) 2^-24.
 * Why: bf16 keeps 8 significant bits, so rounding moves a normal operand by at most 2^-8 of
 * itself, and a product q_k v_k by (2^-7 + 2^-16) |q_k v_k|; summed, at most
 * (2^-7 + 2^-16) ||q|| ||v_i|| (Cauchy-Schwarz). fp32 accumulation of D exact products adds
 * at most D 2^-24 (1 + 2^-6) of the same, rounding s_i to float 2^-24 of it, and the float
 * arithmetic of a_i -/+ e_i itself 2^-24 each: delta holds all of that with room. The ea
 * and sqrt(D) terms cover flushing to zero: operands below 2^-126 (fp32 denormals; at most
 * 2^-126 each, times the other operand: 2^-126 sqrt(D) (||q|| + ||v_i||) summed) and products
 * or partial sums that vdpbf16ps flushes (2^-126 each, 2D of them), doubled for the rounding
 * of e_i. Items and queries have finite components and norms <= 2^60, so nothing overflows.
 *
 * Let T be the k-th largest lower bound a_i - e_i. Every item with a_i + e_i < T has an
 * exact score below k others' exact scores, so it cannot be in the top k whatever the tie
 * rule: the candidates {i : a_i + e_i >= T} hold the whole exact top k. They are rescored
 * exactly and ranked with er_topk_select (candidate positions are in id order, so its
 * "lower index first" tie rule is "lower id first").
 *
 * The packed copy follows er_lowp_mat's bf16 panel layout (lowp.h) with room for cap rows,
 * so rows can be appended, replaced and dropped at the end as the caller's matrix changes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "eval/topk_bf16.h"

#define NR ER_LOWP_NR

float er_exact_dot(const float *a, const float *b, int D) {
    double s = 0.0;
    for (int k = 0; k < D; k++) s += (double)a[k] * b[k];
    return (float)s;
}

/* ||v||, or -1 when a component is not finite */
static double norm_of(const float *v, int D) {
    double s = 0.0;
    for (int k = 0; k < D; k++) {
        if (!isfinite(v[k])) return -1.0;
        s += (double)v[k] * v[k];
    }
    return sqrt(s);
}

/* x rounded up to float */
static float up(double x) {
    float f = (float)x;
    return (double)f < x ? nextafterf(f, INFINITY) : f;
}

static int bad_vector(const char *what, double nv) {
    if (nv < 0) return er_error(EASYREC_ERR_ARG, "%s has a component that is not finite", what);
    return er_error(EASYREC_ERR_ARG, "%s has norm %g (at most 2^60)", what, nv);
}

/* *norm = ||v|| when v is usable here; else an error naming it: "item 12", "query" (i < 0) */
static int check_row(const float *v, int D, int64_t i, double *norm) {
    double nv = norm_of(v, D);
    if (nv >= 0 && nv <= ER_BF16_MAX_NORM) {
        *norm = nv;
        return EASYREC_OK;
    }
    char what[32] = "query";
    if (i >= 0) snprintf(what, sizeof what, "item %lld", (long long)i);
    return bad_vector(what, nv);
}

int er_bf16_check_vector(const float *v, int D, const char *what) {
    double nv = norm_of(v, D);
    return nv >= 0 && nv <= ER_BF16_MAX_NORM ? EASYREC_OK : bad_vector(what, nv);
}

/* pack rows [i0, i1) of items (checked) into their panel columns, panel by panel (the
 * writes sequential, the reads 32 rows side by side); their norms are in b->norm already */
static void pack_rows(er_bf16_items *b, const float *items, int32_t i0, int32_t i1) {
    size_t kp2 = (size_t)b->m.Kp / 2, D = (size_t)b->dim;
    for (int32_t p = i0 / NR; p * NR < i1; p++) {
        int32_t c0 = i0 > p * NR ? i0 - p * NR : 0, c1 = i1 - p * NR < NR ? i1 - p * NR : NR;
        uint16_t *d = (uint16_t *)b->m.data + (size_t)p * kp2 * NR * 2;
        const float *rows = items + (size_t)p * NR * D;
        for (size_t kk = 0; kk < kp2; kk++)
            for (int32_t c = c0; c < c1; c++)
                for (size_t h = 0; h < 2; h++) {
                    size_t k = 2 * kk + h;
                    d[(kk * NR + (size_t)c) * 2 + h] = k < D ? er_f32_to_bf16_bits(rows[(size_t)c * D + k]) : 0;
                }
    }
}

/* the norm stored for an item: ||v|| rounded up */
static float stored_norm(double nv) { return up(nv * (1.0 + 0x1p-20)); }

static void set_rows(er_bf16_items *b, int32_t n) {
    b->n = n;
    b->m.N = n;
    b->m.panels = (n + NR - 1) / NR;
}

/* room for at least n rows (new room zero): exactly n (rounded to a panel) the first time,
 * then a quarter more each time it grows */
int er_bf16_items_reserve(er_bf16_items *b, int32_t n) {
    ER_ASSERT(n >= 0 && n < INT32_MAX - 2 * NR);
    if (n <= b->cap) return EASYREC_OK;
    int64_t want = b->cap ? (int64_t)b->cap + b->cap / 4 : n;
    if (want < n) want = n;
    if (want > INT32_MAX - 2 * NR) want = n;
    int32_t cap = (int32_t)((want + NR - 1) / NR * NR);
    size_t panel = (size_t)b->m.Kp * NR * sizeof(uint16_t);
    void *d = er_reallocarray(b->m.data, (size_t)cap / NR, panel);
    if (!d) return EASYREC_ERR_NOMEM;
    b->m.data = d;
    memset((char *)d + (size_t)b->cap / NR * panel, 0, (size_t)(cap - b->cap) / NR * panel);
    float *nm = er_reallocarray(b->norm, (size_t)cap, sizeof(float));
    if (!nm) return EASYREC_ERR_NOMEM;
    b->norm = nm;
    b->cap = cap;
    return EASYREC_OK;
}

int er_bf16_items_init(er_bf16_items *b, const float *items, int32_t n, int dim) {
    memset(b, 0, sizeof(*b));
    if (n < 0 || dim < 1) return er_error(EASYREC_ERR_ARG, "item matrix of %d x %d", (int)n, dim);
    b->dim = dim;
    b->m.dtype = ER_LOWP_BF16;
    b->m.K = dim;
    b->m.Kp = (dim + 1) & ~1;
    b->m.isa = er_cpu_isa();
    int rc = er_bf16_items_resize(b, items, n);
    if (rc) er_bf16_items_free(b);
    return rc;
}

void er_bf16_items_free(er_bf16_items *b) {
    if (!b) return;
    er_lowp_free(&b->m);
    free(b->norm);
    memset(b, 0, sizeof(*b));
}

int er_bf16_items_resize(er_bf16_items *b, const float *items, int32_t n) {
    ER_ASSERT(n >= 0 && b->dim >= 1);
    int D = b->dim, rc = er_bf16_items_reserve(b, n > 0 ? n : 1);
    if (rc) return rc;
    for (int32_t i = b->n; i < n; i++) { /* rows past b->n are unused: their norms go there first */
        double nv;
        if ((rc = check_row(items + (size_t)i * D, D, i, &nv))) return rc;
        b->norm[i] = stored_norm(nv);
    }
    if (n > b->n) pack_rows(b, items, b->n, n);
    b->f32 = items;
    set_rows(b, n);
    return EASYREC_OK;
}

int er_bf16_items_update(er_bf16_items *b, int32_t i) {
    ER_ASSERT(i >= 0 && i < b->n);
    double nv;
    int rc = check_row(b->f32 + (size_t)i * b->dim, b->dim, i, &nv);
    if (rc) return rc;
    pack_rows(b, b->f32, i, i + 1);
    b->norm[i] = stored_norm(nv);
    return EASYREC_OK;
}

size_t er_bf16_items_bytes(const er_bf16_items *b) {
    return (size_t)b->cap * ((size_t)b->m.Kp * sizeof(uint16_t) + sizeof(float));
}

void er_bf16_scan(const er_bf16_items *b, er_isa isa, const float *Q, int nq, int p0, int p1, float *S, size_t ldc) {
    ER_ASSERT(p0 >= 0 && p1 <= b->m.panels);
    if (p0 >= p1 || nq <= 0) return;
    er_lowp_mat v = b->m; /* a view of panels [p0, p1) */
    int32_t i0 = p0 * NR, i1 = p1 * NR < b->n ? p1 * NR : b->n;
    v.data = (uint16_t *)b->m.data + (size_t)p0 * b->m.Kp * NR;
    v.N = i1 - i0;
    v.panels = p1 - p0;
    er_gemm_bf16(isa, &v, nq, Q, b->dim, NULL, S + i0, (int)ldc);
}

/* ---- refining one query ------------------------------------------------------------------- */

void er_bf16_refine_scratch_free(er_bf16_refine_scratch *s) {
    if (!s) return;
    free(s->lower), free(s->cs), free(s->ci), free(s->skip), free(s->heap), free(s->sel);
    memset(s, 0, sizeof(*s));
}

static int refine_reserve(er_bf16_refine_scratch *s, int32_t n, int k) {
    if (n > s->n_cap) {
        free(s->lower), free(s->cs), free(s->ci), free(s->skip);
        s->lower = er_mallocarray((size_t)n, sizeof(float));
        s->cs = er_mallocarray((size_t)n, sizeof(float));
        s->ci = er_mallocarray((size_t)n, sizeof(int32_t));
        s->skip = er_calloc((size_t)n, 1);
        s->n_cap = s->lower && s->cs && s->ci && s->skip ? n : 0;
        if (!s->n_cap) return EASYREC_ERR_NOMEM;
    }
    if (k > s->k_cap) {
        free(s->heap), free(s->sel);
        s->heap = er_mallocarray((size_t)k, sizeof(er_topk_entry));
        s->sel = er_mallocarray((size_t)k, sizeof(int32_t));
        s->k_cap = s->heap && s->sel ? k : 0;
        if (!s->k_cap) return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

int er_bf16_refine(const er_bf16_items *b, const float *q, const float *a, int k, const int32_t *excl, int nexcl,
                   er_bf16_refine_scratch *s, int32_t *out_i, float *out_s, int32_t *n_candidates) {
    ER_ASSERT(k >= 1);
    int32_t n = b->n;
    int D = b->dim;
    if (n_candidates) *n_candidates = 0;
    double nq;
    int rc = check_row(q, D, -1, &nq);
    if (rc) return rc;
    if (n == 0) return 0;
    int kk = k < n ? k : n;
    if ((rc = refine_reserve(s, n, kk))) return rc;
    const double delta = 0x1p-7 + 0x1p-14 + 2.0 * (D + 4) * 0x1p-24;
    const float qe = up(delta * nq * (1.0 + 0x1p-20) + 0x1p-125 * sqrt(D));
    const float ea = up(0x1p-124 * (sqrt(D) * nq * (1.0 + 0x1p-20) + D + 1));
    for (int e = 0; e < nexcl; e++)
        if (excl[e] >= 0 && excl[e] < n) s->skip[excl[e]] = 1;
    const float *nm = b->norm;
    for (int32_t i = 0; i < n; i++) s->lower[i] = s->skip[i] ? -INFINITY : a[i] - (qe * nm[i] + ea);
    er_topk_select(s->lower, n, kk, s->heap, s->sel);
    float T = s->lower[s->sel[kk - 1]]; /* -inf when fewer than kk items are left: all of them */
    int32_t nc = 0;
    for (int32_t i = 0; i < n; i++)
        if (!s->skip[i] && a[i] + (qe * nm[i] + ea) >= T) {
            s->ci[nc] = i;
            s->cs[nc++] = er_exact_dot(q, b->f32 + (size_t)i * D, D);
        }
    for (int e = 0; e < nexcl; e++)
        if (excl[e] >= 0 && excl[e] < n) s->skip[excl[e]] = 0;
    int m = nc < kk ? (int)nc : kk; /* nc >= kk unless fewer than kk items are left */
    if (m > 0) er_topk_select(s->cs, nc, m, s->heap, s->sel);
    for (int j = 0; j < m; j++) {
        out_i[j] = s->ci[s->sel[j]];
        out_s[j] = s->cs[s->sel[j]];
    }
    if (n_candidates) *n_candidates = nc;
    return m;
}

/* precision.c — running the encoder in bf16 or int8 (docs/model.md, "Precision").
 *
 * easyrec_model_set_precision converts every Linear weight of the encoder and of the
 * EasyRec head once into packed low-precision panels (kernels/lowp.h) and frees their fp32
 * copies: the flat parameter buffer is rebuilt with only what stays fp32 (embeddings,
 * LayerNorms, biases, an MLM head if loaded). The forward then reaches those weights through
 * er_model_lowp. The instruction-set level is fixed here too (the CPU's best, or a lower
 * one the caller names), as part of the model: nothing process-wide changes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"
#include "model/model.h"

/* the Linear weights that low precision replaces, in er_model_lowp's `which` order */
static const size_t lin_fields[ER_LIN_COUNT] = {offsetof(er_params, qkvw), offsetof(er_params, attprojw),
                                                 offsetof(er_params, fcw), offsetof(er_params, fcprojw),
                                                 offsetof(er_params, mlpw)};

static int is_lin_field(size_t f) {
    for (int i = 0; i < ER_LIN_COUNT; i++)
        if (lin_fields[i] == f) return 1;
    return 0;
}

/* (out, in) of Linear `which` */
static void lin_shape(const easyrec_config *c, int which, int *N, int *K) {
    int C = c->hidden, F = c->ffn;
    switch (which) {
    case ER_LIN_QKV: *N = 3 * C, *K = C; break;
    case ER_LIN_FC: *N = F, *K = C; break;
    case ER_LIN_FCPROJ: *N = C, *K = F; break;
    default: *N = C, *K = C; break;
    }
}

/* The fp32 copy of a packed weight is never read again: hand its whole pages back to the
 * kernel now, so fp32 and packed weights are not resident together while converting. */
static void release_pages(const void *p, size_t bytes) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)ps - 1) & ~(uintptr_t)(ps - 1), e = ((uintptr_t)p + bytes) & ~(uintptr_t)(ps - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

static int nlowp(const easyrec_config *c) { return c->n_layers * ER_LIN_LAYER + 1; }

const er_lowp_mat *er_model_lowp(const easyrec_model *m, int which, int l) {
    if (!m->lowp) return NULL;
    if (which == ER_LIN_MLP) return m->lowp[m->cfg.n_layers * ER_LIN_LAYER].data ? &m->lowp[m->cfg.n_layers * ER_LIN_LAYER] : NULL;
    return &m->lowp[l * ER_LIN_LAYER + which];
}

er_weight er_model_weight(const easyrec_model *m, int which, int l) {
    const er_lowp_mat *q = er_model_lowp(m, which, l);
    if (q) {
        er_weight r = {q->dtype == ER_LOWP_BF16 ? ER_DT_BF16 : ER_DT_I8, q, NULL};
        return r;
    }
    int N, K;
    lin_shape(&m->cfg, which, &N, &K);
    const float *base = *(float *const *)((const char *)&m->w + lin_fields[which]);
    return er_weight_f32(base + (which == ER_LIN_MLP ? 0 : (size_t)l * N * K));
}

void er_model_lowp_free(easyrec_model *m) {
    if (!m->lowp) return;
    for (int i = 0; i < nlowp(&m->cfg); i++) er_lowp_free(&m->lowp[i]);
    free(m->lowp);
    m->lowp = NULL;
}

static void set_isa(easyrec_model *m, er_isa isa) {
    m->isa = isa;
    if (m->lowp)
        for (int i = 0; i < nlowp(&m->cfg); i++) m->lowp[i].isa = isa;
}

int easyrec_model_set_precision(easyrec_model *m, easyrec_precision p, const char *isa) {
    er_isa want = ER_ISA_AVX512BF16;
    if (isa && *isa) {
        int rc = er_isa_parse(isa, &want);
        if (rc) return rc;
    }
    if (p != EASYREC_PRECISION_FP32 && p != EASYREC_PRECISION_BF16 && p != EASYREC_PRECISION_INT8)
        return er_error(EASYREC_ERR_ARG, "unknown precision %d", (int)p);
    if (p == (easyrec_precision)m->precision) {
        set_isa(m, er_isa_clamp(want));
        return EASYREC_OK;
    }
    if (m->precision != EASYREC_PRECISION_FP32)
        return er_error(EASYREC_ERR_ARG, "model already converted to %s; load it again for another precision",
                        easyrec_precision_name((easyrec_precision)m->precision));
    const easyrec_config *c = &m->cfg;
    int dtype = p == EASYREC_PRECISION_BF16 ? ER_LOWP_BF16 : ER_LOWP_INT8;
    er_lowp_mat *lw = er_calloc((size_t)nlowp(c), sizeof(*lw));
    if (!lw) return EASYREC_ERR_NOMEM;
    int rc = EASYREC_OK;
    for (int i = 0; i < nlowp(c) && rc == EASYREC_OK; i++) {
        int which = i == nlowp(c) - 1 ? ER_LIN_MLP : i % ER_LIN_LAYER, l = i / ER_LIN_LAYER, N, K;
        if (which == ER_LIN_MLP && !c->has_mlp) break;
        lin_shape(c, which, &N, &K);
        const float *base = *(float *const *)((const char *)&m->w + lin_fields[which]);
        const float *src = base + (which == ER_LIN_MLP ? 0 : (size_t)l * N * K);
        rc = er_lowp_pack(&lw[i], dtype, src, N, K, K);
        if (rc == EASYREC_OK) release_pages(src, (size_t)N * K * sizeof(float));
    }
    /* the fp32 buffer without the converted weights */
    size_t keep = 0;
    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (s->part == 0 && er_params_group_present(c, s->group) && !is_lin_field(s->field)) keep += er_params_numel(c, s);
    }
    float *buf = rc == EASYREC_OK ? er_malloc_big(keep ? keep : 1, sizeof(float)) : NULL;
    if (!buf) {
        for (int i = 0; i < nlowp(c); i++) er_lowp_free(&lw[i]);
        free(lw);
        return rc ? rc : EASYREC_ERR_NOMEM;
    }
    er_params w = m->w;
    float *dst = buf;
    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (s->part != 0 || !er_params_group_present(c, s->group)) continue;
        float **f = (float **)((char *)&w + s->field);
        if (is_lin_field(s->field)) {
            *f = NULL;
            continue;
        }
        size_t n = er_params_numel(c, s);
        memcpy(dst, *f, n * sizeof(float));
        release_pages(*f, n * sizeof(float));
        *f = dst;
        dst += n;
    }
    free(m->buf);
    m->buf = buf;
    m->nparams = keep;
    m->w = w;
    m->lowp = lw;
    m->precision = p;
    set_isa(m, er_isa_clamp(want));
    return EASYREC_OK;
}

easyrec_precision easyrec_model_precision(const easyrec_model *m) { return (easyrec_precision)m->precision; }

size_t easyrec_model_weight_bytes(const easyrec_model *m) {
    size_t b = m->nparams * sizeof(float);
    if (m->lowp)
        for (int i = 0; i < nlowp(&m->cfg); i++) b += er_lowp_bytes(&m->lowp[i]);
    return b;
}

const char *easyrec_model_isa(const easyrec_model *m) {
    return m->precision == EASYREC_PRECISION_FP32 ? er_gemm_backend() : er_isa_name((er_isa)m->isa);
}

const char *easyrec_cpu_isa(void) { return er_isa_name(er_cpu_isa()); }

const char *easyrec_precision_name(easyrec_precision p) {
    return p == EASYREC_PRECISION_BF16 ? "bf16" : p == EASYREC_PRECISION_INT8 ? "int8" : "fp32";
}

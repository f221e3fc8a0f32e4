/* params.c — THE parameter table and everything that loops over it: sizes, pointer
 * assignment into one flat buffer, and loading from a checkpoint (safetensors or
 * pytorch_model.bin) with HF key names. Adding a tensor is one line in er_param_table.
 *
 * Key variants accepted: with or without the "roberta."/"bert." prefix; EasyRec head
 * mlp.dense.*; MLM head lm_head.* (RoBERTa) or cls.predictions.* (BERT). Ignored: pooler.*,
 * buffers such as embeddings.position_ids, anything else unknown. If the MLM decoder weight
 * is absent (RobertaForMaskedLM drops the tied copy on save) it is a copy of the word
 * embeddings — what a tied model computes; lm_head.bias and lm_head.decoder.bias are the
 * same tensor, either may be stored.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/tensors.h"
#include "model/model.h"

#define P(f) offsetof(er_params, f)
#define CORE ER_GROUP_CORE
#define MLP ER_GROUP_MLP
#define LM ER_GROUP_LM
#define F32 ER_DT_F32
enum { NORMAL = ER_INIT_NORMAL, ZERO = ER_INIT_ZERO, ONE = ER_INIT_ONE };
enum { NO = ER_DIM_NONE, C = ER_DIM_C, F = ER_DIM_F, V = ER_DIM_V, POS = ER_DIM_P, TT = ER_DIM_TT };

/* key, field, per_layer, part, nparts, rows, cols, group, prefixed, dtype, init, decay */
const er_param_spec er_param_table[] = {
    {"embeddings.word_embeddings.weight", P(wte), 0, 0, 1, V, C, CORE, 1, F32, NORMAL, 1},
    {"embeddings.position_embeddings.weight", P(wpe), 0, 0, 1, POS, C, CORE, 1, F32, NORMAL, 1},
    {"embeddings.token_type_embeddings.weight", P(wtt), 0, 0, 1, TT, C, CORE, 1, F32, NORMAL, 1},
    {"embeddings.LayerNorm.weight", P(emb_lnw), 0, 0, 1, C, NO, CORE, 1, F32, ONE, 0},
    {"embeddings.LayerNorm.bias", P(emb_lnb), 0, 0, 1, C, NO, CORE, 1, F32, ZERO, 0},
    {"encoder.layer.%d.attention.self.query.weight", P(qkvw), 1, 0, 3, C, C, CORE, 1, F32, NORMAL, 1},
    {"encoder.layer.%d.attention.self.key.weight", P(qkvw), 1, 1, 3, C, C, CORE, 1, F32, NORMAL, 1},
    {"encoder.layer.%d.attention.self.value.weight", P(qkvw), 1, 2, 3, C, C, CORE, 1, F32, NORMAL, 1},
    {"encoder.layer.%d.attention.self.query.bias", P(qkvb), 1, 0, 3, C, NO, CORE, 1, F32, ZERO, 0},
    {"encoder.layer.%d.attention.self.key.bias", P(qkvb), 1, 1, 3, C, NO, CORE, 1, F32, ZERO, 0},
    {"encoder.layer.%d.attention.self.value.bias", P(qkvb), 1, 2, 3, C, NO, CORE, 1, F32, ZERO, 0},
    {"encoder.layer.%d.attention.output.dense.weight", P(attprojw), 1, 0, 1, C, C, CORE, 1, F32, NORMAL, 1},
    {"encoder.layer.%d.attention.output.dense.bias", P(attprojb), 1, 0, 1, C, NO, CORE, 1, F32, ZERO, 0},
    {"encoder.layer.%d.attention.output.LayerNorm.weight", P(ln1w), 1, 0, 1, C, NO, CORE, 1, F32, ONE, 0},
    {"encoder.layer.%d.attention.output.LayerNorm.bias", P(ln1b), 1, 0, 1, C, NO, CORE, 1, F32, ZERO, 0},
    {"encoder.layer.%d.intermediate.dense.weight", P(fcw), 1, 0, 1, F, C, CORE, 1, F32, NORMAL, 1},
    {"encoder.layer.%d.intermediate.dense.bias", P(fcb), 1, 0, 1, F, NO, CORE, 1, F32, ZERO, 0},
    {"encoder.layer.%d.output.dense.weight", P(fcprojw), 1, 0, 1, C, F, CORE, 1, F32, NORMAL, 1},
    {"encoder.layer.%d.output.dense.bias", P(fcprojb), 1, 0, 1, C, NO, CORE, 1, F32, ZERO, 0},
    {"encoder.layer.%d.output.LayerNorm.weight", P(ln2w), 1, 0, 1, C, NO, CORE, 1, F32, ONE, 0},
    {"encoder.layer.%d.output.LayerNorm.bias", P(ln2b), 1, 0, 1, C, NO, CORE, 1, F32, ZERO, 0},
    {"mlp.dense.weight", P(mlpw), 0, 0, 1, C, C, MLP, 0, F32, NORMAL, 1},
    {"mlp.dense.bias", P(mlpb), 0, 0, 1, C, NO, MLP, 0, F32, ZERO, 0},
    {"lm_head.dense.weight", P(lmdw), 0, 0, 1, C, C, LM, 0, F32, NORMAL, 1},
    {"lm_head.dense.bias", P(lmdb), 0, 0, 1, C, NO, LM, 0, F32, ZERO, 0},
    {"lm_head.layer_norm.weight", P(lmlnw), 0, 0, 1, C, NO, LM, 0, F32, ONE, 0},
    {"lm_head.layer_norm.bias", P(lmlnb), 0, 0, 1, C, NO, LM, 0, F32, ZERO, 0},
    {"lm_head.decoder.weight", P(lmdecw), 0, 0, 1, V, C, LM, 0, F32, NORMAL, 1},
    {"lm_head.bias", P(lmbias), 0, 0, 1, V, NO, LM, 0, F32, ZERO, 0},
};
const int er_param_table_len = (int)(sizeof er_param_table / sizeof er_param_table[0]);

/* BERT MLM head names (BertForMaskedLM / BertForPreTraining) for the LM group. */
static const struct {
    const char *ours, *bert;
} bert_lm_keys[] = {
    {"lm_head.dense.weight", "cls.predictions.transform.dense.weight"},
    {"lm_head.dense.bias", "cls.predictions.transform.dense.bias"},
    {"lm_head.layer_norm.weight", "cls.predictions.transform.LayerNorm.weight"},
    {"lm_head.layer_norm.bias", "cls.predictions.transform.LayerNorm.bias"},
    {"lm_head.decoder.weight", "cls.predictions.decoder.weight"},
    {"lm_head.bias", "cls.predictions.bias"},
};

int64_t er_params_dim(const easyrec_config *c, int d) {
    switch (d) {
    case ER_DIM_C: return c->hidden;
    case ER_DIM_F: return c->ffn;
    case ER_DIM_V: return c->vocab_size;
    case ER_DIM_P: return c->max_positions;
    case ER_DIM_TT: return c->type_vocab_size;
    default: return 1;
    }
}

int er_params_group_present(const easyrec_config *c, int g) {
    return g == ER_GROUP_CORE || (g == ER_GROUP_MLP && c->has_mlp) || (g == ER_GROUP_LM && c->has_lm_head);
}

/* floats of one checkpoint tensor of entry s */
static size_t spec_tensor_numel(const easyrec_config *c, const er_param_spec *s) {
    return (size_t)er_params_dim(c, s->rows) * (size_t)er_params_dim(c, s->cols);
}

size_t er_params_numel(const easyrec_config *c, const er_param_spec *s) {
    return spec_tensor_numel(c, s) * (size_t)s->nparts * (s->per_layer ? (size_t)c->n_layers : 1);
}

/* the entries sharing one field are consecutive; the first (part 0) sizes the field */
size_t er_params_total(const easyrec_config *c) {
    size_t n = 0;
    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (s->part == 0 && er_params_group_present(c, s->group)) n += er_params_numel(c, s);
    }
    return n;
}

void er_params_assign(const easyrec_config *c, er_params *p, float *buf) {
    memset(p, 0, sizeof(*p));
    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (s->part != 0 || !er_params_group_present(c, s->group)) continue;
        *(float **)((char *)p + s->field) = buf;
        buf += er_params_numel(c, s);
    }
}

/* destination of layer l of entry s inside its field */
static float *spec_dest(const easyrec_config *c, const er_params *p, const er_param_spec *s, int l) {
    float *base = *(float *const *)((const char *)p + s->field);
    size_t one = spec_tensor_numel(c, s);
    return base + ((size_t)l * s->nparts + s->part) * one;
}

float *er_params_find(const easyrec_config *c, const er_params *p, const char *name, size_t *numel) {
    const char *base = name;
    if (!strncmp(name, "roberta.", 8) || !strncmp(name, "bert.", 5)) base = strchr(name, '.') + 1;
    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (!er_params_group_present(c, s->group) || (s->prefixed != (base != name) && base != name)) continue;
        for (int l = 0; l < (s->per_layer ? c->n_layers : 1); l++) {
            char key[160];
            snprintf(key, sizeof key, s->key, l);
            if (strcmp(key, base) != 0) continue;
            if (numel) *numel = spec_tensor_numel(c, s);
            return spec_dest(c, p, s, l);
        }
    }
    return NULL;
}

static void shape_str(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static const er_tensor *find_key(const er_tensorset *ts, const char *prefix, const char *key) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, key);
    const er_tensor *t = er_tensorset_find(ts, full);
    if (t) return t;
    for (size_t i = 0; i < sizeof bert_lm_keys / sizeof bert_lm_keys[0]; i++)
        if (!strcmp(key, bert_lm_keys[i].ours)) return er_tensorset_find(ts, bert_lm_keys[i].bert);
    return NULL;
}

/* Copy one checkpoint tensor into dst after checking its shape. */
static int load_one(const easyrec_config *c, const er_param_spec *s, const er_tensor *t,
                    const char *name, const char *file, float *dst) {
    int64_t want[2] = {er_params_dim(c, s->rows), er_params_dim(c, s->cols)};
    int wnd = s->cols == ER_DIM_NONE ? 1 : 2;
    int ok = t->ndim == wnd && t->shape[0] == want[0] && (wnd == 1 || t->shape[1] == want[1]);
    if (!ok) {
        char a[96], b[96];
        shape_str(a, sizeof a, t->shape, t->ndim);
        shape_str(b, sizeof b, want, wnd);
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s has shape %s, expected %s from config.json",
                        file, name, a, b);
    }
    if (t->dtype != ER_DT_F32 && t->dtype != ER_DT_F16 && t->dtype != ER_DT_BF16 && t->dtype != ER_DT_F64)
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s; only floating point is supported",
                        file, name, er_dtype_name(t->dtype));
    er_tensor_to_f32(t, dst);
    return EASYREC_OK;
}

static int load_tensors(easyrec_model *m, const er_tensorset *ts, const char *file, int with_lm) {
    easyrec_config *c = &m->cfg;
    const char *enc = c->is_roberta ? "roberta." : "bert.";
    char probe[128];
    snprintf(probe, sizeof probe, "%sembeddings.word_embeddings.weight", enc);
    const char *prefix = er_tensorset_find(ts, probe) ? enc : "";
    c->has_mlp = find_key(ts, "", "mlp.dense.weight") != NULL;
    c->has_lm_head = with_lm && find_key(ts, "", "lm_head.dense.weight") != NULL;

    m->nparams = er_params_total(c);
    m->buf = er_malloc_big(m->nparams, sizeof(float));
    if (!m->buf) return EASYREC_ERR_NOMEM;
    er_params_assign(c, &m->w, m->buf);

    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (!er_params_group_present(c, s->group)) continue;
        for (int l = 0; l < (s->per_layer ? c->n_layers : 1); l++) {
            char key[160];
            snprintf(key, sizeof key, s->key, l);
            const char *pre = s->prefixed ? prefix : "";
            const er_tensor *t = find_key(ts, pre, key);
            if (!t && !strcmp(key, "lm_head.bias")) t = find_key(ts, "", "lm_head.decoder.bias");
            float *dst = spec_dest(c, &m->w, s, l);
            if (!t && !strcmp(key, "lm_head.decoder.weight")) {
                memcpy(dst, m->w.wte, (size_t)c->vocab_size * c->hidden * sizeof(float));
                continue;
            }
            if (!t)
                return er_error(EASYREC_ERR_FORMAT, "%s: missing tensor %s%s (expected for a %d-layer %s model)",
                                file, pre, key, c->n_layers, c->is_roberta ? "roberta" : "bert");
            char full[200];
            snprintf(full, sizeof full, "%s%s", pre, key);
            int rc = load_one(c, s, t, full, file, dst);
            if (rc) return rc;
            er_tensorset_release(ts, t);
        }
    }
    return EASYREC_OK;
}

int er_params_load_dir(easyrec_model *m, const char *dir, int with_lm) {
    static const char *names[] = {"model.safetensors", "pytorch_model.bin"};
    er_tensorset ts = {0};
    char *path = NULL;
    int rc = EASYREC_ERR_IO;
    for (int i = 0; i < 2; i++) {
        path = er_path_join(dir, names[i]);
        if (!path) return EASYREC_ERR_NOMEM;
        if (er_file_exists(path)) {
            rc = i == 0 ? er_safetensors_open(path, &ts) : er_torchbin_open(path, &ts);
            break;
        }
        free(path);
        path = NULL;
    }
    if (!path)
        return er_error(EASYREC_ERR_IO, "%s: no weights found (expected model.safetensors or pytorch_model.bin)",
                        dir);
    if (rc == EASYREC_OK) rc = load_tensors(m, &ts, path, with_lm);
    er_tensorset_close(&ts);
    free(path);
    return rc;
}

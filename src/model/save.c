/* save.c — create a model from scratch (HF-style init) and write a model directory
 * (config.json + model.safetensors with the original's tensor names), both by looping over
 * er_param_table. The fused q/k/v rows are written back as separate query/key/value
 * tensors, so the output loads in easyrec and in HF transformers (RobertaModel/Easyrec).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "io/tensors.h"
#include "model/model.h"

/* HF RobertaPreTrainedModel._init_weights on the present groups selected by the bit mask
 * groups, as the table's init column says: Linear/Embedding ~ N(0, 0.02), biases 0,
 * LayerNorm weight 1 / bias 0, the padding
 * row of the word embeddings 0. Each group draws from its own stream of seed. */
static void init_groups(const easyrec_config *c, er_params *w, uint64_t seed, unsigned groups) {
    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (s->part != 0 || !er_params_group_present(c, s->group) || !(groups >> s->group & 1)) continue;
        er_rng r;
        er_rng_seed(&r, seed ^ ((uint64_t)(i + 1) << 32));
        float *p = *(float **)((char *)w + s->field);
        size_t n = er_params_numel(c, s);
        for (size_t k = 0; k < n; k++)
            p[k] = s->init == ER_INIT_ONE ? 1.0f : s->init == ER_INIT_ZERO ? 0.0f : (float)(0.02 * er_rng_normal(&r));
    }
    if (groups >> ER_GROUP_CORE & 1) memset(w->wte + (size_t)c->pad_id * c->hidden, 0, (size_t)c->hidden * sizeof(float));
}

int easyrec_model_init(const easyrec_config *cfg, uint64_t seed, easyrec_model **out) {
    *out = NULL;
    easyrec_model *m = er_calloc(1, sizeof(*m));
    if (!m) return EASYREC_ERR_NOMEM;
    m->cfg = *cfg;
    easyrec_config *c = &m->cfg;
    if (c->n_layers < 1 || c->hidden < 1 || c->n_heads < 1 || c->hidden % c->n_heads || c->ffn < 1 ||
        c->vocab_size < 1 || c->max_positions < 1 || c->type_vocab_size < 1 || c->pad_id < 0 ||
        c->pad_id >= c->vocab_size || c->layer_norm_eps <= 0) {
        easyrec_model_free(m);
        return er_error(EASYREC_ERR_ARG, "invalid model configuration");
    }
    m->nparams = er_params_total(c);
    m->buf = er_malloc_big(m->nparams, sizeof(float));
    m->dir = er_strdup("(new model)");
    if (!m->buf || !m->dir) {
        easyrec_model_free(m);
        return EASYREC_ERR_NOMEM;
    }
    er_params_assign(c, &m->w, m->buf);
    init_groups(c, &m->w, seed, 1 << ER_GROUP_CORE | 1 << ER_GROUP_MLP | 1 << ER_GROUP_LM);
    *out = m;
    return EASYREC_OK;
}

int er_model_reshape(easyrec_model *m, int n_layers, int want_mlp, int want_lm, uint64_t seed) {
    easyrec_config nc = m->cfg;
    if (n_layers > 0) {
        if (n_layers > m->cfg.n_layers)
            return er_error(EASYREC_ERR_ARG, "cannot keep %d layers of a %d-layer model", n_layers, m->cfg.n_layers);
        nc.n_layers = n_layers;
    }
    nc.has_mlp = m->cfg.has_mlp || want_mlp;
    nc.has_lm_head = m->cfg.has_lm_head || want_lm;
    size_t total = er_params_total(&nc);
    float *buf = er_mallocarray(total, sizeof(float));
    if (!buf) return EASYREC_ERR_NOMEM;
    er_params w;
    er_params_assign(&nc, &w, buf);
    unsigned fresh = 0;
    for (int g = ER_GROUP_MLP; g <= ER_GROUP_LM; g++)
        if (er_params_group_present(&nc, g) && !er_params_group_present(&m->cfg, g)) fresh |= 1u << g;
    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (s->part != 0 || !er_params_group_present(&m->cfg, s->group)) continue;
        /* per-layer tensors are stacked by layer: the bottom layers are a prefix */
        memcpy(*(float **)((char *)&w + s->field), *(float *const *)((const char *)&m->w + s->field),
               er_params_numel(&nc, s) * sizeof(float));
    }
    init_groups(&nc, &w, seed, fresh);
    free(m->buf);
    m->buf = buf;
    m->nparams = total;
    m->w = w;
    m->cfg = nc;
    return EASYREC_OK;
}

static int write_config(const easyrec_config *c, const char *path) {
    json_t *o = json_object();
    json_t *arch = json_array();
    json_array_append_new(arch, json_string(c->has_mlp ? "Easyrec" : c->is_roberta ? "RobertaModel" : "BertModel"));
    json_object_set_new(o, "architectures", arch);
    json_object_set_new(o, "model_type", json_string(c->is_roberta ? "roberta" : "bert"));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(o, "intermediate_size", json_integer(c->ffn));
    json_object_set_new(o, "hidden_act", json_string("gelu"));
    json_object_set_new(o, "hidden_dropout_prob", json_real(0.1));
    json_object_set_new(o, "attention_probs_dropout_prob", json_real(0.1));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_positions));
    json_object_set_new(o, "type_vocab_size", json_integer(c->type_vocab_size));
    json_object_set_new(o, "initializer_range", json_real(0.02));
    json_object_set_new(o, "layer_norm_eps", json_real(c->layer_norm_eps));
    json_object_set_new(o, "pad_token_id", json_integer(c->pad_id));
    if (c->is_roberta) {
        json_object_set_new(o, "bos_token_id", json_integer(0));
        json_object_set_new(o, "eos_token_id", json_integer(2));
    }
    json_object_set_new(o, "position_embedding_type", json_string("absolute"));
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    size_t n = strlen(s);
    s[n] = '\n'; /* json_dumps leaves room for the NUL we overwrite; write n+1 bytes */
    int rc = er_write_file_atomic(path, s, n + 1);
    free(s);
    return rc;
}

int easyrec_model_save(const easyrec_model *m, const char *dir) {
    if (m->precision != EASYREC_PRECISION_FP32)
        return er_error(EASYREC_ERR_ARG, "a model converted to %s cannot be saved (its fp32 weights are gone)",
                        easyrec_precision_name((easyrec_precision)m->precision));
    const easyrec_config *c = &m->cfg;
    const char *prefix = c->is_roberta ? "roberta." : "bert.";
    int cap = 0;
    for (int i = 0; i < er_param_table_len; i++)
        if (er_params_group_present(c, er_param_table[i].group))
            cap += er_param_table[i].per_layer ? c->n_layers : 1;
    er_tensor_out *t = er_calloc((size_t)cap, sizeof(*t));
    char *names = er_calloc((size_t)cap, 200);
    int n = 0, rc = EASYREC_OK;
    if (!t || !names) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (!er_params_group_present(c, s->group)) continue;
        const float *base = *(float *const *)((const char *)&m->w + s->field);
        size_t one = (size_t)er_params_dim(c, s->rows) * (size_t)er_params_dim(c, s->cols);
        for (int l = 0; l < (s->per_layer ? c->n_layers : 1); l++) {
            char key[160];
            snprintf(key, sizeof key, s->key, l);
            char *name = names + (size_t)n * 200;
            snprintf(name, 200, "%s%s", s->prefixed ? prefix : "", key);
            t[n].name = name;
            t[n].data = base + ((size_t)l * s->nparts + s->part) * one;
            t[n].ndim = s->cols == ER_DIM_NONE ? 1 : 2;
            t[n].shape[0] = er_params_dim(c, s->rows);
            t[n].shape[1] = er_params_dim(c, s->cols);
            n++;
        }
    }
    char *cfg = er_path_join(dir, "config.json"), *st = er_path_join(dir, "model.safetensors");
    if (!cfg || !st)
        rc = EASYREC_ERR_NOMEM;
    else if (!(rc = er_safetensors_write(st, t, n)))
        rc = write_config(c, cfg);
    free(cfg);
    free(st);
out:
    free(t);
    free(names);
    return rc;
}

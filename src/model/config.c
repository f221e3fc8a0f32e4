/* config.c — read a Hugging Face config.json into easyrec_config.
 *
 * Supports model_type roberta (also xlm-roberta, same architecture) and bert with
 * hidden_act "gelu" (exact erf) and absolute position embeddings. Defaults are the HF
 * RobertaConfig / BertConfig defaults for fields a config omits. Every size is range
 * checked so later size arithmetic cannot overflow.
 */
#include <jansson.h>
#include <string.h>

#include "core/err.h"
#include "model/model.h"

static int get_int(json_t *root, const char *key, int dflt, int lo, int hi, const char *path, int *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (dflt < 0) return er_error(EASYREC_ERR_FORMAT, "%s: missing \"%s\"", path, key);
        *out = dflt;
        return EASYREC_OK;
    }
    if (!json_is_integer(v))
        return er_error(EASYREC_ERR_FORMAT, "%s: \"%s\" must be an integer", path, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return er_error(EASYREC_ERR_FORMAT, "%s: \"%s\" = %lld out of range [%d, %d]", path, key,
                        (long long)x, lo, hi);
    *out = (int)x;
    return EASYREC_OK;
}

int er_config_load(const char *path, easyrec_config *c) {
    memset(c, 0, sizeof(*c));
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (!er_file_exists(path)) return er_error(EASYREC_ERR_IO, "%s: no such file", path);
        return er_error(EASYREC_ERR_FORMAT, "%s:%d: invalid JSON: %s", path, jerr.line, jerr.text);
    }
    int rc = EASYREC_OK;
    if (!json_is_object(root)) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: not a JSON object", path);
        goto out;
    }
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    if (!mt) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: missing \"model_type\"", path);
        goto out;
    }
    if (!strcmp(mt, "roberta") || !strcmp(mt, "xlm-roberta"))
        c->is_roberta = 1;
    else if (strcmp(mt, "bert") != 0) {
        rc = er_error(EASYREC_ERR_UNSUPPORTED, "%s: model_type \"%s\" not supported (roberta or bert)", path, mt);
        goto out;
    }
    const char *act = json_string_value(json_object_get(root, "hidden_act"));
    if (act && strcmp(act, "gelu") != 0) {
        rc = er_error(EASYREC_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" not supported (gelu)", path, act);
        goto out;
    }
    const char *pet = json_string_value(json_object_get(root, "position_embedding_type"));
    if (pet && strcmp(pet, "absolute") != 0) {
        rc = er_error(EASYREC_ERR_UNSUPPORTED, "%s: position_embedding_type \"%s\" not supported", path, pet);
        goto out;
    }
    if ((rc = get_int(root, "num_hidden_layers", -1, 1, 1024, path, &c->n_layers)) ||
        (rc = get_int(root, "hidden_size", -1, 1, 65536, path, &c->hidden)) ||
        (rc = get_int(root, "num_attention_heads", -1, 1, 4096, path, &c->n_heads)) ||
        (rc = get_int(root, "intermediate_size", -1, 1, 1 << 20, path, &c->ffn)) ||
        (rc = get_int(root, "vocab_size", -1, 1, 1 << 24, path, &c->vocab_size)) ||
        (rc = get_int(root, "max_position_embeddings", 512, 1, 1 << 20, path, &c->max_positions)) ||
        (rc = get_int(root, "type_vocab_size", 2, 1, 1 << 16, path, &c->type_vocab_size)) ||
        (rc = get_int(root, "pad_token_id", c->is_roberta ? 1 : 0, 0, (1 << 24) - 1, path, &c->pad_id)))
        goto out;
    c->layer_norm_eps = 1e-12f;
    json_t *eps = json_object_get(root, "layer_norm_eps");
    if (eps) {
        if (!json_is_number(eps) || json_number_value(eps) <= 0 || json_number_value(eps) > 1) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: \"layer_norm_eps\" must be a number in (0, 1]", path);
            goto out;
        }
        c->layer_norm_eps = (float)json_number_value(eps);
    }
    if (c->hidden % c->n_heads) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: hidden_size %d not divisible by num_attention_heads %d", path,
                      c->hidden, c->n_heads);
        goto out;
    }
    if (c->pad_id >= c->vocab_size) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: pad_token_id %d >= vocab_size %d", path, c->pad_id, c->vocab_size);
        goto out;
    }
    if (c->is_roberta && c->pad_id + 2 >= c->max_positions) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: max_position_embeddings %d leaves no positions after padding_idx %d",
                      path, c->max_positions, c->pad_id);
        goto out;
    }
out:
    json_decref(root);
    return rc;
}

/* in the order of CLI_PRESET_CHOICES (src/cli/cli.h) */
const er_model_preset er_model_presets[] = {
    {"tiny", 2, 128, 4, 512},
    {"small", 6, 768, 12, 3072}, /* EasyRec-small: the bottom 6 layers of roberta-base */
    {"base", 12, 768, 12, 3072},
    {"large", 24, 1024, 16, 4096},
    {0, 0, 0, 0, 0},
};

const er_model_preset *er_model_preset_find(const char *name) {
    for (const er_model_preset *p = er_model_presets; name && p->name; p++)
        if (!strcmp(p->name, name)) return p;
    return NULL;
}

/* train_state.c — the resumable training state in OUTPUT/checkpoint-last/:
 *   config.json + model.safetensors   current weights (easyrec_model_save)
 *   optimizer.bin                     "ERADAMW1", u64 n, then n f32 first moments and n f32
 *                                     second moments, little-endian (docs/formats.md)
 *   trainer_state.json                step, best metric, run settings checked on resume
 * The directory is written as checkpoint-last.tmp and renamed into place, so a crash
 * leaves either the old or the new state, never a mix. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "train/train_state.h"

static int copy_if_exists(const char *from_dir, const char *to_dir, const char *name) {
    char *src = er_path_join(from_dir, name), *dst = er_path_join(to_dir, name), *buf = NULL;
    size_t len;
    int rc = src && dst ? EASYREC_OK : EASYREC_ERR_NOMEM;
    if (!rc && er_file_exists(src) && strcmp(src, dst) != 0 && !(rc = er_read_file(src, &buf, &len)))
        rc = er_write_file_atomic(dst, buf, len);
    free(src), free(dst), free(buf);
    return rc;
}

/* the tokenizer files a model directory may hold (copied when present) */
static const char *const tok_files[] = {"vocab.json", "merges.txt", "vocab.txt", "tokenizer.json",
                                        "special_tokens_map.json", "tokenizer_config.json"};
#define N_TOK_FILES (sizeof tok_files / sizeof tok_files[0])

/* tokenizer files of tok_dir copied into out (a tokenizer_config.json written when absent) */
int er_checkpoint_write_tokenizer(const easyrec_model *m, const char *tok_dir, const char *out) {
    int rc = EASYREC_OK;
    for (size_t i = 0; i < N_TOK_FILES && !rc; i++) rc = copy_if_exists(tok_dir, out, tok_files[i]);
    char *tc = er_path_join(out, "tokenizer_config.json");
    if (!rc && !tc) rc = EASYREC_ERR_NOMEM;
    if (!rc && !er_file_exists(tc)) {
        const char *js = m->cfg.is_roberta
                             ? "{\n  \"tokenizer_class\": \"RobertaTokenizer\",\n  \"add_prefix_space\": false,\n"
                               "  \"model_max_length\": 512,\n  \"errors\": \"replace\",\n  \"bos_token\": \"<s>\",\n"
                               "  \"eos_token\": \"</s>\",\n  \"unk_token\": \"<unk>\",\n  \"sep_token\": \"</s>\",\n"
                               "  \"cls_token\": \"<s>\",\n  \"pad_token\": \"<pad>\",\n  \"mask_token\": \"<mask>\"\n}\n"
                             : "{\n  \"tokenizer_class\": \"BertTokenizer\",\n  \"do_lower_case\": true,\n"
                               "  \"model_max_length\": 512\n}\n";
        rc = er_write_file_atomic(tc, js, strlen(js));
    }
    free(tc);
    return rc;
}

static int rm_rf(const char *dir) {
    /* the checkpoint directory holds only the files written here */
    static const char *const files[] = {"config.json", "model.safetensors", "optimizer.bin", "trainer_state.json"};
    size_t nf = sizeof files / sizeof files[0];
    for (size_t i = 0; i < nf + N_TOK_FILES; i++) {
        char *p = er_path_join(dir, i < nf ? files[i] : tok_files[i - nf]);
        if (!p) return EASYREC_ERR_NOMEM;
        unlink(p);
        free(p);
    }
    if (rmdir(dir) != 0 && errno != ENOENT) return er_error(EASYREC_ERR_IO, "%s: %s", dir, strerror(errno));
    return EASYREC_OK;
}

int er_train_state_save(const char *output, const easyrec_model *m, const float *mom, const float *vel, size_t n,
                     const er_train_state *st, const char *tok_dir) {
    char *dir = er_path_join(output, "checkpoint-last"), *tmp = er_path_join(output, "checkpoint-last.tmp");
    char *old = er_path_join(output, "checkpoint-last.old"), *opt = NULL, *sj = NULL, *js = NULL;
    uint8_t *buf = NULL;
    int rc = EASYREC_OK;
    if (!dir || !tmp || !old) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    rm_rf(tmp);
    if (mkdir(tmp, 0755) != 0) {
        rc = er_error(EASYREC_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if ((rc = easyrec_model_save(m, tmp))) goto out;
    if (tok_dir && (rc = er_checkpoint_write_tokenizer(m, tok_dir, tmp))) goto out;
    size_t bytes = 16 + 2 * n * sizeof(float);
    buf = er_mallocarray(bytes, 1);
    opt = er_path_join(tmp, "optimizer.bin");
    if (!buf || !opt) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    memcpy(buf, "ERADAMW1", 8);
    for (int b = 0; b < 8; b++) buf[8 + b] = (uint8_t)((uint64_t)n >> (8 * b));
    memcpy(buf + 16, mom, n * sizeof(float));
    memcpy(buf + 16 + n * sizeof(float), vel, n * sizeof(float));
    if ((rc = er_write_file_atomic(opt, buf, bytes))) goto out;
    json_t *o = json_pack("{s:I, s:f, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I}", "step", (json_int_t)st->step, "best",
                          st->best, "best_step", (json_int_t)st->best_step, "seed", (json_int_t)st->seed,
                          "batch", (json_int_t)st->batch, "accum", (json_int_t)st->accum, "domain_batches",
                          st->domain_batches, "n_examples", (json_int_t)st->n_examples, "total_steps",
                          (json_int_t)st->total_steps, "n_params", (json_int_t)n);
    js = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    sj = er_path_join(tmp, "trainer_state.json");
    if (!js || !sj) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    if ((rc = er_write_file_atomic(sj, js, strlen(js)))) goto out;
    rm_rf(old);
    if (rename(dir, old) != 0 && errno != ENOENT) {
        rc = er_error(EASYREC_ERR_IO, "%s: %s", dir, strerror(errno));
        goto out;
    }
    if (rename(tmp, dir) != 0) {
        rc = er_error(EASYREC_ERR_IO, "%s: %s", dir, strerror(errno));
        goto out;
    }
    rm_rf(old);
out:
    free(dir), free(tmp), free(old), free(opt), free(sj), free(js), free(buf);
    return rc;
}

int er_train_state_load(const char *output, easyrec_model **m, float **mom, float **vel, er_train_state *st) {
    *m = NULL;
    *mom = *vel = NULL;
    char *dir = er_path_join(output, "checkpoint-last");
    char *opt = dir ? er_path_join(dir, "optimizer.bin") : NULL, *sj = dir ? er_path_join(dir, "trainer_state.json") : NULL;
    char *buf = NULL;
    size_t len = 0;
    json_t *o = NULL;
    int rc;
    if (!dir || !opt || !sj) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    json_error_t je;
    o = json_load_file(sj, 0, &je);
    if (!o) {
        rc = er_error(EASYREC_ERR_IO, "%s: cannot resume: %s", sj, je.text);
        goto out;
    }
    json_int_t step, best_step, seed, batch, accum, nex, total, np;
    double best;
    int dom = 0;
    if (json_unpack_ex(o, &je, 0, "{s:I, s:F, s:I, s:I, s:I, s:I, s?b, s:I, s:I, s:I}", "step", &step, "best", &best,
                       "best_step", &best_step, "seed", &seed, "batch", &batch, "accum", &accum, "domain_batches",
                       &dom, "n_examples", &nex, "total_steps", &total, "n_params", &np)) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: %s", sj, je.text);
        goto out;
    }
    st->step = step, st->best = best, st->best_step = best_step, st->seed = (uint64_t)seed;
    st->domain_batches = dom;
    st->batch = (int)batch, st->accum = (int)accum, st->n_examples = (size_t)nex, st->total_steps = total;
    if ((rc = er_model_load(dir, 1, m))) goto out;
    if ((size_t)np != (*m)->nparams) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: state is for %lld parameters, the model has %zu", sj, (long long)np,
                      (*m)->nparams);
        goto out;
    }
    if ((rc = er_read_file(opt, &buf, &len))) goto out;
    size_t n = (*m)->nparams;
    if (len != 16 + 2 * n * sizeof(float) || memcmp(buf, "ERADAMW1", 8) != 0) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: not an optimizer state for %zu parameters", opt, n);
        goto out;
    }
    *mom = er_malloc_big(n, sizeof(float));
    *vel = er_malloc_big(n, sizeof(float));
    if (!*mom || !*vel) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    memcpy(*mom, buf + 16, n * sizeof(float));
    memcpy(*vel, buf + 16 + n * sizeof(float), n * sizeof(float));
out:
    if (rc) {
        easyrec_model_free(*m);
        free(*mom), free(*vel);
        *m = NULL;
        *mom = *vel = NULL;
    }
    json_decref(o);
    free(dir), free(opt), free(sj), free(buf);
    return rc;
}

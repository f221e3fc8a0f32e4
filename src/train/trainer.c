/* trainer.c — the EasyRec training run (spec §3.3–3.5).
 *
 * A step takes batch * accum examples (the last step of an epoch fewer). The contrastive
 * loss is over ALL of them, exactly as the original's all-gathered global batch, computed
 * by gradient caching when accum > 1 (train.h); the MLM loss is the mean of the
 * micro-batches' means (the original's per-device mean). Then global-norm clipping, AdamW
 * (no decay on biases and LayerNorm weights) with a linear schedule after optional
 * warmup (HF get_linear_schedule_with_warmup). Every eval_steps steps and at the end, the
 * mean validation Recall@20 over validation datasets x profile sets (spec §3.5) decides
 * whether OUTPUT/ receives the model (the best one is the output). The resumable state is
 * saved at each validation, at the end, at max_steps and on SIGINT/SIGTERM.
 */
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/rng.h"
#include "eval/eval.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/train.h"
#include "train/train_data.h"
#include "train/train_state.h"

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { stop_requested = sig; }

void train_opts_init(er_train_opts *o) {
    memset(o, 0, sizeof(*o));
    o->epochs = 25;
    o->batch = 32;
    o->accum = 1;
    o->lr = 5e-5f;
    o->clip = 1.0f;
    o->max_length = 64;
    o->eval_max_length = 512;
    o->temp = 0.05f;
    o->mlm_weight = 0.1f;
    o->mlm_prob = 0.15f;
    o->dropout = 0.1f;
    o->diverse = 3;
    o->user_items_k = 5;
    o->eval_steps = 1000;
    o->seed = 2024;
    o->threads = 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- validation ---- */

typedef struct {
    er_dataset ds;
    int n;
    char name[ER_MAX_PROFILE_SETS][160];
    er_texts items[ER_MAX_PROFILE_SETS], users[ER_MAX_PROFILE_SETS];
} val_domain;

static int val_open(val_domain *v, const char *dir, int diverse, int user_k) {
    memset(v, 0, sizeof(*v));
    int rc = dataset_open_dir(dir, &v->ds);
    if (rc) return rc;
    if (!v->ds.has_split[ER_SPLIT_VAL]) return er_error(EASYREC_ERR_FORMAT, "%s: no val_mat.pkl to validate on", dir);
    for (int s = 0; s < v->ds.n_sets && s <= diverse; s++) {
        const er_profile_set *ps = &v->ds.sets[s];
        if (!ps->item_path) continue;
        int k = v->n;
        if ((rc = dataset_read_profiles(&v->ds, ps->item_path, 0, &v->items[k]))) return rc;
        v->n++;
        rc = ps->user_path ? dataset_read_profiles(&v->ds, ps->user_path, 1, &v->users[k])
                           : eval_user_text_from_items(&v->ds.split[ER_SPLIT_TRN], &v->items[k], user_k, &v->users[k]);
        if (rc) return rc;
        char name[sizeof v->name[k]]; /* a local first: dir may not be proven distinct from v */
        snprintf(name, sizeof name, "%s/%s", dir, ps->name);
        memcpy(v->name[k], name, sizeof name);
    }
    if (v->n == 0) return er_error(EASYREC_ERR_FORMAT, "%s: no item profiles to validate with", dir);
    return EASYREC_OK;
}

static void val_close(val_domain *v) {
    for (int i = 0; i < v->n; i++) texts_free(&v->items[i]), texts_free(&v->users[i]);
    dataset_free(&v->ds);
}

/* mean Recall@20 over every (dataset, set); per-set values appended to log as JSON */
static int validate(easyrec_model *m, val_domain *vd, int nv, const er_train_opts *o, double *mean, FILE *log,
                    long step) {
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    if (!ctx) return EASYREC_ERR_NOMEM;
    easyrec_encode_opts eo;
    easyrec_encode_opts_init(&eo);
    eo.max_length = o->eval_max_length;
    eo.threads = o->threads;
    double sum = 0;
    int cnt = 0, rc = EASYREC_OK;
    if (log) fprintf(log, "{\"step\": %ld, \"eval\": {", step);
    for (int d = 0; d < nv && !rc; d++)
        for (int s = 0; s < vd[d].n && !rc; s++) {
            int D = easyrec_model_dim(m);
            float *ue = er_mallocarray((size_t)vd[d].ds.n_users, (size_t)D * sizeof(float));
            float *ie = er_mallocarray((size_t)vd[d].ds.n_items, (size_t)D * sizeof(float));
            if (!ue || !ie) rc = EASYREC_ERR_NOMEM;
            if (!rc) rc = easyrec_encode(ctx, (const char *const *)vd[d].users[s].text, vd[d].users[s].len,
                                         vd[d].users[s].n, &eo, ue);
            if (!rc) rc = easyrec_encode(ctx, (const char *const *)vd[d].items[s].text, vd[d].items[s].len,
                                         vd[d].items[s].n, &eo, ie);
            if (!rc) {
                er_dense_scorer dsc = {ue, ie, vd[d].ds.n_items, D};
                er_scorer sc;
                dense_scorer(&dsc, &sc);
                er_eval_setup es = {&vd[d].ds, ER_SPLIT_VAL, 0, {20}, 1, o->threads};
                er_set_result r;
                memset(&r, 0, sizeof r);
                rc = eval_run(&es, &sc, &r);
                if (!rc) {
                    sum += r.recall[0];
                    cnt++;
                    if (log) fprintf(log, "%s\"%s\": %.6f", cnt > 1 ? ", " : "", vd[d].name[s], r.recall[0]);
                }
            }
            free(ue);
            free(ie);
        }
    *mean = cnt ? sum / cnt : 0;
    if (log) fprintf(log, "}, \"eval_recall@20\": %.6f}\n", *mean), fflush(log);
    easyrec_ctx_free(ctx);
    return rc;
}

/* ---- output ---- */

/* the best model: weights + config + tokenizer files */
static int save_best(const easyrec_model *m, const char *tok_dir, const char *out) {
    int rc = easyrec_model_save(m, out);
    return rc ? rc : checkpoint_write_tokenizer(m, tok_dir, out);
}

/* ---- model setup ---- */

static int setup_model(const er_train_opts *o, easyrec_model **out, const char **tok_dir) {
    easyrec_model *m = NULL;
    int rc;
    if (o->init_dir) {
        if ((rc = model_load(o->init_dir, 1, &m))) return rc;
        *tok_dir = o->vocab_dir ? o->vocab_dir : o->init_dir;
    } else {
        static const struct {
            const char *name;
            int L, C, NH, F;
        } shapes[] = {{"tiny", 2, 128, 4, 512}, {"small", 6, 768, 12, 3072}, {"base", 12, 768, 12, 3072},
                      {"large", 24, 1024, 16, 4096}};
        int k = -1;
        for (int i = 0; i < 4; i++)
            if (o->config && !strcmp(o->config, shapes[i].name)) k = i;
        if (k < 0) return er_error(EASYREC_ERR_ARG, "--config must be tiny, small, base or large");
        if (!o->vocab_dir) return er_error(EASYREC_ERR_ARG, "--config needs --vocab DIR (tokenizer files)");
        easyrec_tokenizer *tok = NULL;
        if ((rc = easyrec_tokenizer_load(o->vocab_dir, &tok))) return rc;
        easyrec_config c = {0};
        c.n_layers = shapes[k].L, c.hidden = shapes[k].C, c.n_heads = shapes[k].NH, c.ffn = shapes[k].F;
        c.vocab_size = easyrec_tokenizer_vocab_size(tok);
        c.pad_id = easyrec_tokenizer_pad_id(tok);
        c.is_roberta = easyrec_tokenizer_kind_of(tok) == EASYREC_TOKENIZER_BPE;
        c.max_positions = c.is_roberta ? 514 : 512;
        c.type_vocab_size = c.is_roberta ? 1 : 2;
        c.layer_norm_eps = c.is_roberta ? 1e-5f : 1e-12f;
        c.has_mlp = c.has_lm_head = 1;
        if ((rc = easyrec_model_init(&c, o->seed, &m))) {
            easyrec_tokenizer_free(tok);
            return rc;
        }
        m->tok = tok;
        *tok_dir = o->vocab_dir;
    }
    if (!m->tok) {
        easyrec_model_free(m);
        return er_error(EASYREC_ERR_ARG, "%s: no tokenizer files (give --vocab DIR)", *tok_dir);
    }
    if ((rc = model_reshape(m, o->layers, 1, 1, o->seed ^ 0x5eedULL))) {
        easyrec_model_free(m);
        return rc;
    }
    *out = m;
    return EASYREC_OK;
}

/* 1 for parameters that take weight decay (the table's decay column: not biases, not
 * LayerNorm weights) */
static void decay_mask(const easyrec_model *m, uint8_t *mask) {
    memset(mask, 1, m->nparams);
    const easyrec_config *c = &m->cfg;
    for (int i = 0; i < er_param_table_len; i++) {
        const er_param_spec *s = &er_param_table[i];
        if (s->decay) continue;
        for (int l = 0; l < (s->per_layer ? c->n_layers : 1); l++) {
            char key[160];
            snprintf(key, sizeof key, s->key, l);
            size_t n;
            float *p = params_find(c, &m->w, key, &n);
            if (p) memset(mask + (p - m->buf), 0, n);
        }
    }
}

static double lr_at(const er_train_opts *o, long step, long total) {
    if (o->warmup > 0 && step < o->warmup) return o->lr * (double)step / o->warmup;
    long rest = total - (o->warmup > 0 ? o->warmup : 0);
    double f = rest > 0 ? (double)(total - step) / rest : 0;
    return o->lr * (f > 0 ? f : 0);
}

/* ---- the run ---- */

int train_run(const er_train_opts *o) {
    int rc = EASYREC_OK;
    easyrec_model *m = NULL;
    const char *tok_dir = NULL;
    float *grad = NULL, *mom = NULL, *vel = NULL, *e_all = NULL, *de_all = NULL;
    uint8_t *mask = NULL;
    size_t *perm = NULL;
    er_train_data td = {0};
    er_step st = {0};
    er_batch *mb = NULL;
    val_domain *vd = NULL;
    int nv = 0, n_micro_max = o->accum;
    FILE *log = NULL;
    er_train_state ts = {0, -1.0, -1, o->seed, o->batch, o->accum, o->domain_batches, 0, 0};

    if (mkdir(o->output, 0755) != 0 && errno != EEXIST)
        return er_error(EASYREC_ERR_IO, "%s: %s", o->output, strerror(errno));
    if ((rc = setup_model(o, &m, &tok_dir))) goto out;
    if ((rc = train_data_open(&td, o->data, o->n_data, m->tok, o->seed, o->max_length, o->user_items_k,
                              o->mlm_weight > 0 ? o->mlm_prob : 0.0f, /* no MLM loss: no MLM copies */
                              o->diverse)))
        goto out;
    size_t per_step = (size_t)o->batch * o->accum;
    long steps_per_epoch = (long)((td.n_ex + per_step - 1) / per_step);
    long total = steps_per_epoch * o->epochs;
    ts.n_examples = td.n_ex;
    ts.total_steps = total;
    size_t n = m->nparams;
    if (o->resume) {
        easyrec_model *rm = NULL;
        er_train_state rs;
        if ((rc = train_state_load(o->output, &rm, &mom, &vel, &rs))) goto out;
        if (rs.seed != o->seed || rs.batch != o->batch || rs.accum != o->accum ||
            rs.domain_batches != o->domain_batches || rs.n_examples != td.n_ex ||
            rs.total_steps != total || rm->nparams != n) {
            easyrec_model_free(rm);
            rc = er_error(EASYREC_ERR_ARG, "%s/checkpoint-last was made with other settings (seed, batch, "
                                           "grad-accum, domain-batches, epochs or data differ): cannot resume", o->output);
            goto out;
        }
        memcpy(m->buf, rm->buf, n * sizeof(float));
        easyrec_model_free(rm);
        ts = rs;
        if (!o->quiet) fprintf(stderr, "easyrec: resuming at step %ld of %ld\n", ts.step, total);
    } else {
        mom = er_calloc(n, sizeof(float));
        vel = er_calloc(n, sizeof(float));
    }
    grad = er_calloc(n, sizeof(float));
    mask = er_mallocarray(n, 1);
    perm = er_mallocarray(td.n_ex, sizeof(size_t));
    mb = er_calloc((size_t)n_micro_max, sizeof(*mb));
    e_all = er_mallocarray(3 * per_step, (size_t)m->cfg.hidden * sizeof(float));
    de_all = er_mallocarray(3 * per_step, (size_t)m->cfg.hidden * sizeof(float));
    if (!mom || !vel || !grad || !mask || !perm || !mb || !e_all || !de_all) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    size_t cap_tok = train_data_batch_tokens(&td, o->batch);
    for (int i = 0; i < n_micro_max; i++) {
        mb[i].ids = er_mallocarray(cap_tok, sizeof(int32_t));
        mb[i].off = er_mallocarray((size_t)6 * o->batch + 1, sizeof(int));
        mb[i].labels = er_mallocarray(cap_tok, sizeof(int32_t));
        if (!mb[i].ids || !mb[i].off || !mb[i].labels) {
            rc = EASYREC_ERR_NOMEM;
            goto out;
        }
    }
    if ((rc = step_init(&st, &m->cfg, o->batch, cap_tok, o->max_length, o->threads))) goto out;
    decay_mask(m, mask);
    if (o->n_val >= 0) {
        nv = o->val ? o->n_val : o->n_data;
        vd = er_calloc((size_t)nv, sizeof(*vd));
        if (!vd) {
            rc = EASYREC_ERR_NOMEM;
            goto out;
        }
        for (int i = 0; i < nv; i++)
            if ((rc = val_open(&vd[i], o->val ? o->val[i] : o->data[i], o->diverse, o->user_items_k))) {
                nv = i + 1;
                goto out;
            }
    }
    char *logp = er_path_join(o->output, "train_log.jsonl");
    log = logp ? fopen(logp, o->resume ? "a" : "w") : NULL;
    free(logp);
    if (!log) {
        rc = er_error(EASYREC_ERR_IO, "%s/train_log.jsonl: %s", o->output, strerror(errno));
        goto out;
    }
    stop_requested = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    er_params g;
    params_assign(&m->cfg, &g, grad);
    er_adamw h = {o->lr, 0.9f, 0.999f, 1e-8f, o->weight_decay};
    long cur_epoch = -1;
    double t0 = now(), ex_done = 0;
    int C = m->cfg.hidden, tty = isatty(2);
    while (ts.step < total && !rc) {
        long epoch = ts.step / steps_per_epoch, within = ts.step % steps_per_epoch;
        if (epoch != cur_epoch) {
            if ((rc = train_data_epoch_order(&td, epoch, o->domain_batches ? per_step : 0, perm))) break;
            cur_epoch = epoch;
        }
        size_t first = (size_t)within * per_step, take = td.n_ex - first < per_step ? td.n_ex - first : per_step;
        int micros = (int)((take + o->batch - 1) / o->batch);
        for (int i = 0; i < micros && !rc; i++) {
            int k = (int)(take - (size_t)i * o->batch < (size_t)o->batch ? take - (size_t)i * o->batch : (size_t)o->batch);
            rc = train_data_batch(&td, perm, epoch, first + (size_t)i * o->batch, k, &mb[i]);
        }
        if (rc) break;
        memset(grad, 0, n * sizeof(float));
        double lc = 0, lm = 0;
        uint64_t dseed = (o->seed * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)ts.step << 20);
        if (micros == 1) {
            er_dropout d = {o->dropout, dseed};
            train_step(m, &g, &st, &mb[0], o->temp, o->mlm_weight, 1.0f, &d, &lc, &lm);
        } else {
            /* gradient caching: embeddings of every micro-batch, one contrastive loss, then
             * each micro-batch's backward with its rows of the embedding gradient */
            int tot = 0;
            for (int i = 0; i < micros; i++) tot += mb[i].n;
            int off = 0;
            float *tmp = de_all; /* staging for one micro-batch's (3k, C) embeddings */
            for (int i = 0; i < micros; i++) {
                er_dropout d = {o->dropout, dseed + (uint64_t)i};
                int k = mb[i].n;
                train_embed(m, &st, &mb[i], &d, tmp);
                for (int part = 0; part < 3; part++)
                    memcpy(e_all + ((size_t)part * tot + off) * C, tmp + (size_t)part * k * C, (size_t)k * C * sizeof(float));
                off += k;
            }
            lc = contrastive_loss(e_all, de_all, tot, C, o->temp);
            off = 0;
            for (int i = 0; i < micros; i++) {
                er_dropout d = {o->dropout, dseed + (uint64_t)i};
                int k = mb[i].n;
                float *dmi = e_all; /* e_all is free now: gather this micro-batch's rows of de */
                for (int part = 0; part < 3; part++)
                    memcpy(dmi + (size_t)part * k * C, de_all + ((size_t)part * tot + off) * C, (size_t)k * C * sizeof(float));
                lm += train_step_cached(m, &g, &st, &mb[i], dmi, o->mlm_weight, 1.0f / micros, &d) / micros;
                off += k;
            }
        }
        /* global-norm clipping (torch clip_grad_norm_: coef = max / (norm + 1e-6), if < 1) */
        double ss = 0;
        for (size_t i = 0; i < n; i++) ss += (double)grad[i] * grad[i];
        double gnorm = sqrt(ss);
        if (o->clip > 0 && gnorm > o->clip) {
            float coef = (float)(o->clip / (gnorm + 1e-6));
            for (size_t i = 0; i < n; i++) grad[i] *= coef;
        }
        h.lr = (float)lr_at(o, ts.step, total);
        adamw_step(&h, m->buf, grad, mom, vel, n, ts.step + 1, mask, o->threads);
        ts.step++;
        ex_done += (double)take;
        double el = now() - t0, rate = ex_done / (el > 0 ? el : 1e-9);
        double eta = rate > 0 ? (double)(total - ts.step) * per_step / rate : 0;
        fprintf(log, "{\"step\": %ld, \"epoch\": %.4f, \"loss\": %.6f, \"loss_cl\": %.6f, \"loss_mlm\": %.6f, "
                     "\"lr\": %.4e, \"grad_norm\": %.4f, \"examples_per_s\": %.2f}\n",
                ts.step, (double)ts.step / steps_per_epoch, lc + o->mlm_weight * lm, lc, lm, h.lr, gnorm, rate);
        fflush(log);
        if (!o->quiet && (tty || ts.step % 10 == 0 || ts.step == total))
            fprintf(stderr, "%sstep %ld/%ld  epoch %.2f  loss %.4f (cl %.4f mlm %.4f)  lr %.2e  %.1f ex/s  ETA %.0fm%s",
                    tty ? "\r" : "", ts.step, total, (double)ts.step / steps_per_epoch, lc + o->mlm_weight * lm, lc,
                    lm, h.lr, rate, eta / 60, tty ? "  " : "\n");
        int at_eval = (o->eval_steps > 0 && ts.step % o->eval_steps == 0) || ts.step == total;
        if (at_eval && nv > 0) {
            double metric;
            if (!o->quiet && tty) fputc('\n', stderr);
            if ((rc = validate(m, vd, nv, o, &metric, log, ts.step))) break;
            if (!o->quiet) fprintf(stderr, "easyrec: step %ld validation Recall@20 %.4f%s\n", ts.step, metric,
                                   metric > ts.best ? " (best: saved)" : "");
            if (metric > ts.best) {
                ts.best = metric;
                ts.best_step = ts.step;
                if ((rc = save_best(m, tok_dir, o->output))) break;
            }
        } else if (at_eval && ts.step == total) {
            if ((rc = save_best(m, tok_dir, o->output))) break; /* no validation: the last model */
        }
        int stop = stop_requested || (o->max_steps > 0 && ts.step >= o->max_steps);
        if (at_eval || stop || ts.step == total)
            if ((rc = train_state_save(o->output, m, mom, vel, n, &ts, tok_dir))) break;
        if (stop) {
            if (!o->quiet)
                fprintf(stderr, "\neasyrec: stopped at step %ld; state saved, continue with --resume\n", ts.step);
            break;
        }
    }
    if (!o->quiet && tty) fputc('\n', stderr);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
out:
    if (log) fclose(log);
    for (int i = 0; vd && i < nv; i++) val_close(&vd[i]);
    free(vd);
    for (int i = 0; mb && i < n_micro_max; i++) free(mb[i].ids), free(mb[i].off), free(mb[i].labels);
    free(mb);
    step_free(&st);
    train_data_free(&td);
    free(grad), free(mom), free(vel), free(mask), free(perm), free(e_all), free(de_all);
    easyrec_model_free(m);
    return rc;
}

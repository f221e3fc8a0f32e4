/* trainer.c — the EasyRec training run (spec §3.3–3.5): sets up the model, data, state and
 * optimiser, then runs the loop (loop.c) over EasyRec's step (easyrec_task.c) with this
 * file's after-step hook: the JSON-lines log (jansson), progress events, validation and
 * checkpoints.
 *
 * Every eval_steps steps and at the end, the mean validation Recall@20 over validation
 * datasets x profile sets (spec §3.5, eval's runner) decides whether OUTPUT/ receives the
 * model (the best one is the output; before any validation, or without validation, the
 * latest). The resumable state is saved at each validation, at the end, at max_steps and
 * when the caller's cancel flag rises (the CLI raises it on SIGINT/SIGTERM).
 */
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/rng.h"
#include "eval/eval.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/easyrec_task.h"
#include "train/loop.h"
#include "train/train.h"
#include "train/train_data.h"
#include "train/train_state.h"

void er_train_opts_init(er_train_opts *o) {
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

/* ---- the run's state shared with the after-step hook ---- */

typedef struct {
    const er_train_opts *o;
    easyrec_model *m;
    const char *tok_dir;
    er_dataset *val; /* (nv) validation datasets */
    int nv;
    FILE *log;
    er_train_state ts;
    float *mom, *vel;
    long total, end, steps_per_epoch;
    int output_has_model; /* OUTPUT/ holds a model of this run (best or latest) */
    double t0, ex_done;
} trainer;

static void emit(const trainer *T, const er_train_event *ev) {
    if (T->o->progress) T->o->progress(T->o->progress_user, ev);
}

/* a JSON number, or null for a non-finite value (JSON has no NaN) */
static json_t *jnum(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static int log_line(trainer *T, json_t *obj) {
    int rc = obj && json_dumpf(obj, T->log, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) == 0 &&
                     fputc('\n', T->log) != EOF && fflush(T->log) == 0
                 ? EASYREC_OK
                 : er_error(EASYREC_ERR_IO, "%s/train_log.jsonl: %s", T->o->output, obj ? strerror(errno) : "out of memory");
    json_decref(obj);
    return rc;
}

/* ---- validation: eval's runner on each validation dataset ---- */

/* mean Recall@20 over every (dataset, profile set); per-set values in the log */
static int validate(trainer *T, double *mean) {
    const er_train_opts *o = T->o;
    json_t *sets = json_object(), *line = json_object();
    double sum = 0;
    int cnt = 0, rc = sets && line ? EASYREC_OK : EASYREC_ERR_NOMEM;
    for (int d = 0; d < T->nv && !rc; d++) {
        const char *dir = o->val ? o->val[d] : o->data[d];
        er_eval_request rq;
        er_eval_request_init(&rq);
        rq.scorer = ER_EVAL_MODEL;
        rq.setup.split = ER_SPLIT_VAL;
        rq.setup.nk = 1;
        rq.setup.ks[0] = 20;
        rq.setup.threads = o->threads;
        rq.where = dir;
        rq.model = T->m;
        rq.model_dir = T->tok_dir;
        rq.encode.max_length = o->eval_max_length;
        rq.encode.threads = o->threads;
        rq.profiles = ER_PROFILES_ALL;
        rq.max_sets = o->diverse + 1; /* the original set and `diverse` diverse ones */
        rq.skip_unusable = 1;
        rq.ut.mode = ER_UTEXT_AUTO; /* user profiles, else the user's training items */
        rq.ut.k = o->user_items_k;
        er_eval_report rep;
        if ((rc = er_eval_dataset(&T->val[d], &rq, &rep))) break;
        if (rep.n == 0) rc = er_error(EASYREC_ERR_FORMAT, "%s: no item profiles to validate with", dir);
        for (int s = 0; s < rep.n && !rc; s++) {
            char name[512];
            snprintf(name, sizeof name, "%s/%s", dir, rep.sets[s].name);
            json_object_set_new(sets, name, jnum(rep.sets[s].recall[0]));
            sum += rep.sets[s].recall[0];
            cnt++;
        }
    }
    *mean = cnt ? sum / cnt : 0;
    if (rc) {
        json_decref(sets), json_decref(line);
        return rc;
    }
    json_object_set_new(line, "step", json_integer(T->ts.step));
    json_object_set_new(line, "eval", sets);
    json_object_set_new(line, "eval_recall@20", jnum(*mean));
    return log_line(T, line);
}

/* ---- output ---- */

/* the best model: weights + config + tokenizer files */
static int save_best(const easyrec_model *m, const char *tok_dir, const char *out) {
    int rc = easyrec_model_save(m, out);
    return rc ? rc : er_checkpoint_write_tokenizer(m, tok_dir, out);
}

/* ---- model setup ---- */

static int setup_model(const er_train_opts *o, easyrec_model **out, const char **tok_dir) {
    easyrec_model *m = NULL;
    int rc;
    if (o->init_dir) {
        if ((rc = er_model_load(o->init_dir, 1, &m))) return rc;
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
    if ((rc = er_model_reshape(m, o->layers, 1, 1, o->seed ^ 0x5eedULL))) {
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
            float *p = er_params_find(c, &m->w, key, &n);
            if (p) memset(mask + (p - m->buf), 0, n);
        }
    }
}

/* ---- after each step: log, progress, validation, checkpoints ---- */

static int after_step(void *ctx, const er_step_stats *st, int *stop) {
    trainer *T = ctx;
    const er_train_opts *o = T->o;
    int rc;
    T->ts.step = st->step;
    T->ex_done += st->examples;
    double el = er_now() - T->t0, rate = T->ex_done / (el > 0 ? el : 1e-9);
    double per_step = (double)o->batch * o->accum * (o->comm ? o->comm->size : 1), epoch = (double)st->step / T->steps_per_epoch;
    json_t *line = json_object();
    if (line) {
        json_object_set_new(line, "step", json_integer(st->step));
        json_object_set_new(line, "epoch", jnum(epoch));
        json_object_set_new(line, "loss", jnum(st->loss));
        json_object_set_new(line, "loss_cl", jnum(st->loss_cl));
        json_object_set_new(line, "loss_mlm", jnum(st->loss_mlm));
        json_object_set_new(line, "lr", jnum(st->lr));
        json_object_set_new(line, "grad_norm", jnum(st->grad_norm));
        json_object_set_new(line, "examples_per_s", jnum(rate));
        json_object_set_new(line, "elapsed_s", jnum(el)); /* since this run's first step began */
        /* where the step's time went (rank 0's clock): compute, the embeddings' all-gather,
         * the gradient all-reduce, the optimiser */
        json_object_set_new(line, "time_compute_s", jnum(st->t_step - st->t_comm));
        json_object_set_new(line, "time_gather_s", jnum(st->t_comm));
        json_object_set_new(line, "time_allreduce_s", jnum(st->t_allreduce));
        json_object_set_new(line, "time_update_s", jnum(st->t_update));
    }
    if ((rc = log_line(T, line))) return rc;
    er_train_event ev = {ER_TRAIN_STEP, st->step, T->total, epoch, st->loss, st->loss_cl, st->loss_mlm, st->lr,
                         st->grad_norm, rate, rate > 0 ? (double)(T->total - st->step) * per_step / rate : 0, 0, 0};
    emit(T, &ev);
    int at_end = st->step == T->total;
    int at_eval = (o->eval_steps > 0 && st->step % o->eval_steps == 0) || at_end;
    if (at_eval && T->nv > 0) {
        double metric;
        if ((rc = validate(T, &metric))) return rc;
        int best = metric > T->ts.best;
        er_train_event ee = {ER_TRAIN_EVAL, st->step, T->total, epoch, 0, 0, 0, 0, 0, 0, 0, metric, best};
        emit(T, &ee);
        if (best) {
            T->ts.best = metric;
            T->ts.best_step = st->step;
            if ((rc = save_best(T->m, T->tok_dir, o->output))) return rc;
            T->output_has_model = 1;
        }
    } else if (at_end) {
        if ((rc = save_best(T->m, T->tok_dir, o->output))) return rc; /* no validation: the last model */
    }
    *stop = (o->cancel && *o->cancel) || st->step >= T->end;
    if (*stop && !at_end) {
        /* stopped early: OUTPUT/ must still hold a loadable model — the best one if a
         * validation chose it, else (or without validation) the latest */
        if ((T->nv == 0 || !T->output_has_model) && (rc = save_best(T->m, T->tok_dir, o->output))) return rc;
        T->output_has_model = 1;
    }
    if (at_eval || *stop || at_end)
        if ((rc = er_train_state_save(o->output, T->m, T->mom, T->vel, T->m->nparams, &T->ts, T->tok_dir))) return rc;
    if (*stop && !at_end) {
        er_train_event es = {ER_TRAIN_STOPPED, st->step, T->total, epoch, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        emit(T, &es);
    }
    return EASYREC_OK;
}

/* ---- the run ---- */

static int path_exists(const char *dir, const char *name) {
    char *p = er_path_join(dir, name);
    struct stat sb;
    int r = p && stat(p, &sb) == 0;
    free(p);
    return r;
}

int er_train_run(const er_train_opts *o) {
    int rc = EASYREC_OK;
    trainer T;
    memset(&T, 0, sizeof T);
    T.o = o;
    float *grad = NULL;
    uint8_t *mask = NULL;
    er_train_data td = {0};
    er_easyrec_task task = {0};
    er_comm *comm = o->comm ? o->comm : er_comm_serial();
    /* the state records micro-batches per step over all ranks: R ranks x A equal one process
     * with grad-accum R*A, so a run resumes with any rank count that keeps batch x accum x R */
    int accum_all = o->accum * comm->size;
    T.ts = (er_train_state){0, -1.0, -1, o->seed, o->batch, accum_all, o->domain_batches, 0, 0};

    int root = comm->rank == 0;
    int has_state = path_exists(o->output, "checkpoint-last") || path_exists(o->output, "train_log.jsonl");
    if (has_state && !o->resume && !o->overwrite)
        return er_error(EASYREC_ERR_ARG,
                        "%s already holds training state (checkpoint-last/, train_log.jsonl): continue it with "
                        "--resume, or start again with --overwrite",
                        o->output);
    if (o->resume && !path_exists(o->output, "checkpoint-last"))
        return er_error(EASYREC_ERR_ARG, "%s/checkpoint-last: no training state to resume", o->output);
    if (comm->size > 1 && (rc = comm->barrier(comm))) return rc; /* every rank checked before rank 0 writes */
    if ((rc = setup_model(o, &T.m, &T.tok_dir))) goto out;
    int maxlen = easyrec_model_max_length(T.m);
    if (o->max_length > maxlen) {
        rc = er_error(EASYREC_ERR_ARG, "--max-length %d exceeds what the model's position table allows (%d)",
                      o->max_length, maxlen);
        goto out;
    }
    if (root && mkdir(o->output, 0755) != 0 && errno != EEXIST) {
        rc = er_error(EASYREC_ERR_IO, "%s: %s", o->output, strerror(errno));
        goto out;
    }
    if ((rc = er_train_data_open(&td, o->data, o->n_data, T.m->tok, o->seed, o->max_length, o->user_items_k,
                              o->mlm_weight > 0 ? o->mlm_prob : 0.0f, /* no MLM loss: no MLM copies */
                              o->diverse)))
        goto out;
    size_t per_step = (size_t)o->batch * o->accum * comm->size;
    T.steps_per_epoch = (long)((td.n_ex + per_step - 1) / per_step);
    T.total = T.steps_per_epoch * o->epochs;
    T.end = o->max_steps > 0 && o->max_steps < T.total ? o->max_steps : T.total;
    T.ts.n_examples = td.n_ex;
    T.ts.total_steps = T.total;
    size_t n = T.m->nparams;
    if (o->resume) {
        easyrec_model *rm = NULL;
        er_train_state rs;
        if ((rc = er_train_state_load(o->output, &rm, &T.mom, &T.vel, &rs))) goto out;
        if (rs.seed != o->seed || rs.batch != o->batch || rs.accum != accum_all ||
            rs.domain_batches != o->domain_batches || rs.n_examples != td.n_ex || rs.total_steps != T.total ||
            rm->nparams != n) {
            easyrec_model_free(rm);
            rc = er_error(EASYREC_ERR_ARG, "%s/checkpoint-last was made with other settings (seed, batch, "
                                           "grad-accum x ranks, domain-batches, epochs or data differ): cannot resume", o->output);
            goto out;
        }
        memcpy(T.m->buf, rm->buf, n * sizeof(float));
        easyrec_model_free(rm);
        T.ts = rs;
        T.output_has_model = rs.best_step >= 0;
        er_train_event ev = {ER_TRAIN_RESUMED, T.ts.step, T.total, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        emit(&T, &ev);
    } else {
        T.mom = er_calloc_big(n, sizeof(float));
        T.vel = er_calloc_big(n, sizeof(float));
    }
    grad = er_calloc_big(n, sizeof(float));
    mask = er_mallocarray(n, 1);
    if (!T.mom || !T.vel || !grad || !mask) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    er_easyrec_task_opts to = {o->batch, o->accum, o->domain_batches, o->threads, o->max_length,
                               o->temp, o->mlm_weight, o->dropout, o->seed, comm};
    if ((rc = er_easyrec_task_init(&task, T.m, &td, &to))) goto out;
    decay_mask(T.m, mask);
    if (o->n_val >= 0) {
        int nv = o->val ? o->n_val : o->n_data;
        if (!(T.val = er_calloc((size_t)nv, sizeof(*T.val)))) {
            rc = EASYREC_ERR_NOMEM;
            goto out;
        }
        for (; T.nv < nv; T.nv++) {
            const char *dir = o->val ? o->val[T.nv] : o->data[T.nv];
            if ((rc = er_dataset_open_dir(dir, &T.val[T.nv]))) goto out;
            if (!T.val[T.nv].has_split[ER_SPLIT_VAL]) {
                T.nv++;
                rc = er_error(EASYREC_ERR_FORMAT, "%s: no val_mat.pkl to validate on", dir);
                goto out;
            }
        }
    }
    char *logp = root ? er_path_join(o->output, "train_log.jsonl") : NULL;
    T.log = logp ? fopen(logp, o->resume ? "a" : "w") : NULL;
    free(logp);
    if (root && !T.log) {
        rc = er_error(EASYREC_ERR_IO, "%s/train_log.jsonl: %s", o->output, strerror(errno));
        goto out;
    }
    er_optim opt = {{o->lr, 0.9f, 0.999f, 1e-8f, o->weight_decay}, o->warmup, T.total, o->clip, T.mom, T.vel, mask,
                    n, o->threads};
    er_loop loop = {comm, &opt, T.m->buf, grad, T.end, er_easyrec_step, &task, root ? after_step : NULL, &T};
    /* every rank starts from rank 0's parameters (they are equal when loaded alike; this makes sure) */
    if (comm->size > 1 && (rc = comm->bcast(comm, T.m->buf, n * sizeof(float), 0))) goto out;
    T.t0 = er_now();
    long step = T.ts.step;
    rc = er_loop_run(&loop, &step);
out:
    if (T.log) fclose(T.log);
    for (int i = 0; i < T.nv; i++) er_dataset_free(&T.val[i]);
    free(T.val);
    er_easyrec_task_free(&task);
    er_train_data_free(&td);
    free(grad), free(T.mom), free(T.vel), free(mask);
    easyrec_model_free(T.m);
    return rc;
}

/* test_trainer.c — `easyrec train` end to end on two tiny synthetic datasets
 * (tests/fixtures/train/data, written by tools/gen_train_fixture.py) with a 1-layer random
 * model over the real RoBERTa vocabulary (skipped without ../shared): N steps equal N/2 +
 * --resume + N/2 bit for bit, 1 thread equals 2 threads bit for bit, the output is a
 * loadable HF-layout checkpoint selected by validation, and gradient caching (grad-accum)
 * equals one large batch. */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/err.h"
#include "model/model.h"
#include "train/train.h"
#include "train/train_data.h"
#include "train/trainer.h"

/* the contrastive loss with scratch of its own (the library preallocates it) */
static double cl_loss(const float *e, float *de, int n, int C, float temp) {
    er_contrastive w;
    if (er_contrastive_init(&w, n, C) != EASYREC_OK) abort();
    double l = er_contrastive_loss(&w, e, de, n, C, temp);
    er_contrastive_free(&w);
    return l;
}


static char tmp[64];

static void setup(void) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent: no vocabulary for the training model");
    if (tmp[0]) return;
    strcpy(tmp, "/tmp/easyrec-trainer-XXXXXX");
    REQUIRE(mkdtemp(tmp));
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output %s/init --layers 1 --hidden 32 --heads 2 "
               "--ffn 64 --seed 3 2>/dev/null",
               check_bin(), tmp) == 0);
}

/* the datasets, staged by make from the .in files of tests/fixtures/train/data */
#define DATA ER_FIXTURES "/train/data/d1," ER_FIXTURES "/train/data/d2"
#define TRAIN "%s train --init %s/init --data " DATA " --epochs 3 --batch-size 3 --grad-accum 2 --lr 1e-3 " \
              "--quiet --eval-steps 0"

TEST(resume_is_bit_exact_and_threads_do_not_matter) {
    setup();
    REQUIRE(check_sh(TRAIN " --val-data none --threads 2 --output %s/full", check_bin(), tmp, tmp) == 0);
    REQUIRE(check_sh(TRAIN " --val-data none --threads 2 --output %s/half --max-steps 4", check_bin(), tmp, tmp) == 0);
    /* stopped state differs from the finished one */
    CHECK(check_sh("cmp -s %s/full/checkpoint-last/model.safetensors %s/half/checkpoint-last/model.safetensors", tmp,
             tmp) != 0);
    REQUIRE(check_sh(TRAIN " --val-data none --threads 2 --output %s/half --resume", check_bin(), tmp, tmp) == 0);
    CHECK(check_sh("cmp %s/full/checkpoint-last/model.safetensors %s/half/checkpoint-last/model.safetensors", tmp, tmp) == 0);
    CHECK(check_sh("cmp %s/full/checkpoint-last/optimizer.bin %s/half/checkpoint-last/optimizer.bin", tmp, tmp) == 0);
    REQUIRE(check_sh(TRAIN " --val-data none --threads 1 --output %s/one", check_bin(), tmp, tmp) == 0);
    CHECK(check_sh("cmp %s/full/checkpoint-last/model.safetensors %s/one/checkpoint-last/model.safetensors", tmp, tmp) == 0);
    /* the weights moved */
    CHECK(check_sh("cmp -s %s/init/model.safetensors %s/full/model.safetensors", tmp, tmp) != 0);
    /* resuming with other settings is refused */
    CHECK(check_sh(TRAIN " --val-data none --output %s/half --resume --batch-size 2 2>/dev/null", check_bin(), tmp, tmp) == 1);
}

/* SIGTERM mid-run: the step finishes, the state is saved, exit 0; resuming reaches the
 * same weights as the uninterrupted run of the first test */
TEST(sigterm_saves_state_and_resume_completes) {
    setup();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, TRAIN " --val-data none --threads 2 --output %s/sig", check_bin(), tmp, tmp);
    REQUIRE(check_sh("(%s) & pid=$!; for i in $(seq 1 400); do [ -s %s/sig/train_log.jsonl ] && break; sleep 0.05; done; "
               "kill -TERM $pid; wait $pid",
               cmd, tmp) == 0);
    CHECK(check_sh("test -f %s/sig/checkpoint-last/trainer_state.json", tmp) == 0);
    /* it stopped early (the run has 15 steps) */
    CHECK(check_sh("grep -q '\"step\": 15,' %s/sig/checkpoint-last/trainer_state.json", tmp) != 0);
    /* the stopped state is also a model directory (tokenizer files beside the weights) */
    CHECK(check_sh("printf 'a tent for two\\n' | %s encode --model %s/sig/checkpoint-last --text --input /dev/stdin "
                   "--output %s/sig.npy --threads 1 2>/dev/null",
                   check_bin(), tmp, tmp) == 0);
    REQUIRE(check_sh("%s --resume", cmd) == 0);
    CHECK(check_sh("cmp %s/full/checkpoint-last/model.safetensors %s/sig/checkpoint-last/model.safetensors", tmp, tmp) == 0);
}

TEST(validation_selects_and_writes_a_loadable_checkpoint) {
    setup();
    REQUIRE(check_sh("%s train --init %s/init --data " DATA " --epochs 2 --batch-size 4 --lr 1e-3 --quiet "
               "--eval-steps 3 --threads 2 --output %s/val",
               check_bin(), tmp, tmp) == 0);
    CHECK(check_sh("grep -q eval_recall@20 %s/val/train_log.jsonl", tmp) == 0);
    CHECK(check_sh("test -f %s/val/vocab.json && test -f %s/val/merges.txt && test -f %s/val/tokenizer_config.json", tmp,
             tmp, tmp) == 0);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/val", tmp);
    easyrec_model *m = NULL;
    int rc = er_model_load(dir, 1, &m);
    if (rc) printf("    %s\n", easyrec_last_error());
    REQUIRE(rc == EASYREC_OK);
    CHECK(m->cfg.has_mlp && m->cfg.has_lm_head && m->tok != NULL);
    easyrec_model_free(m);
    /* bad input: a dataset directory that does not exist */
    CHECK(check_sh("%s train --init %s/init --data %s/nope --output %s/x --quiet 2>/dev/null", check_bin(), tmp, tmp, tmp) == 1);
}

/* gradient caching over micro-batches == one step on the whole batch (contrastive part) */
TEST(gradient_caching_equals_one_large_batch) {
    easyrec_model *m = NULL;
    REQUIRE(er_model_load("tests/fixtures/train/model", 1, &m) == EASYREC_OK);
    /* 4 triples of fixed sequences; MLM copies unmasked (labels -100) */
    enum { n = 4, T = 6 };
    int32_t ids[6 * n * T];
    int off[6 * n + 1];
    int32_t labels[3 * n * T];
    for (int s = 0; s < 6 * n; s++) {
        off[s] = s * T;
        int src = s < 3 * n ? s : (s - 3 * n) % 3 * n + (s - 3 * n) / 3; /* MLM copy of u/p/n */
        for (int t = 0; t < T; t++) ids[s * T + t] = t == 0 ? 0 : t == T - 1 ? 2 : 4 + (src * 37 + t * 11) % 500;
    }
    off[6 * n] = 6 * n * T;
    for (int i = 0; i < 3 * n * T; i++) labels[i] = -100;
    labels[7] = 99; /* one MLM target, in micro-batch 0 */
    er_batch whole = {n, 6 * n, ids, off, labels};
    size_t np = m->nparams;
    float *g1 = calloc(np, sizeof(float)), *g2 = calloc(np, sizeof(float));
    er_params p1, p2;
    er_params_assign(&m->cfg, &p1, g1);
    er_params_assign(&m->cfg, &p2, g2);
    er_step st;
    REQUIRE(er_step_init(&st, &m->cfg, n, 6 * n * T, T, 2) == EASYREC_OK);
    er_dropout d = {0.0f, 0};
    double lc, lm;
    er_train_step(m, &p1, &st, &whole, 0.05f, 0.0f, 1.0f, &d, &lc, &lm);
    /* two micro-batches of 2 triples: sequences regrouped per micro */
    int C = m->cfg.hidden;
    float e[3 * n * 32], de[3 * n * 32], dmi[3 * 2 * 32];
    REQUIRE(C == 32);
    int32_t mids[2][6 * 2 * T], mlab[2][3 * 2 * T];
    int moff[2][6 * 2 + 1];
    for (int mi = 0; mi < 2; mi++) {
        int k = 0;
        for (int part = 0; part < 3; part++)
            for (int j = 0; j < 2; j++, k++) memcpy(mids[mi] + k * T, ids + (part * n + 2 * mi + j) * T, T * 4);
        for (int j = 0; j < 2; j++)
            for (int part = 0; part < 3; part++, k++) memcpy(mids[mi] + k * T, ids + (3 * n + (2 * mi + j) * 3 + part) * T, T * 4);
        for (int s = 0; s <= 12; s++) moff[mi][s] = s * T;
        for (int i = 0; i < 3 * 2 * T; i++) mlab[mi][i] = -100;
    }
    er_batch mb[2] = {{2, 12, mids[0], moff[0], mlab[0]}, {2, 12, mids[1], moff[1], mlab[1]}};
    float tmpe[3 * 2 * 32];
    for (int mi = 0; mi < 2; mi++) {
        er_train_embed(m, &st, &mb[mi], &d, tmpe);
        for (int part = 0; part < 3; part++) memcpy(e + (part * n + 2 * mi) * C, tmpe + part * 2 * C, 2 * C * 4);
    }
    double lc2 = cl_loss(e, de, n, C, 0.05f);
    CHECK_NEAR(lc2, lc, 1e-5 * fabs(lc));
    for (int mi = 0; mi < 2; mi++) {
        for (int part = 0; part < 3; part++) memcpy(dmi + part * 2 * C, de + (part * n + 2 * mi) * C, 2 * C * 4);
        er_train_step_cached(m, &p2, &st, &mb[mi], dmi, 0.0f, 0.5f, &d);
    }
    double md = 0, mx = 0;
    for (size_t i = 0; i < np; i++) md = fmax(md, fabs(g1[i] - g2[i])), mx = fmax(mx, fabs(g1[i]));
    if (!(md <= 1e-4 * mx)) printf("    max diff %g of max %g\n", md, mx);
    CHECK(md <= 1e-4 * mx && mx > 0);
    /* without MLM loss the batch can drop its MLM copies (3n sequences): same gradient */
    er_batch nomlm = {n, 3 * n, ids, off, labels};
    memset(g2, 0, np * sizeof(float));
    double lc3, lm3;
    er_train_step(m, &p2, &st, &nomlm, 0.05f, 0.0f, 1.0f, &d, &lc3, &lm3);
    CHECK_NEAR(lc3, lc, 1e-6 * fabs(lc));
    CHECK(lm3 == 0.0);
    md = 0;
    for (size_t i = 0; i < np; i++) md = fmax(md, fabs(g1[i] - g2[i]));
    if (!(md <= 1e-5 * mx)) printf("    no-MLM max diff %g of max %g\n", md, mx);
    CHECK(md <= 1e-5 * mx);
    /* a rank's only micro-batch (MPI, one per rank): one forward of all its sequences gives
     * train_embed's embeddings and, with train_step_backward, train_step_cached's gradient, bit
     * for bit — with dropout and an MLM target (dmi holds micro-batch 1's rows of de) */
    er_dropout dd = {0.1f, 77};
    mlab[1][3] = 42;
    float ea[3 * 2 * 32], eb[3 * 2 * 32];
    er_train_embed(m, &st, &mb[1], &dd, ea);
    memset(g1, 0, np * sizeof(float));
    memset(g2, 0, np * sizeof(float));
    double la = er_train_step_cached(m, &p1, &st, &mb[1], dmi, 0.1f, 0.5f, &dd);
    er_train_step_forward(m, &st, &mb[1], &dd, eb);
    CHECK(memcmp(ea, eb, sizeof ea) == 0);
    double lb = er_train_step_backward(m, &p2, &st, &mb[1], dmi, 0.1f, 0.5f, &dd);
    CHECK(la == lb && la > 0);
    CHECK(memcmp(g1, g2, np * sizeof(float)) == 0);
    er_step_free(&st);
    free(g1), free(g2);
    easyrec_model_free(m);
}

/* --domain-batches: every full step from one dataset, still a permutation of the epoch */
TEST(domain_batches_keep_each_step_in_one_dataset) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent");
    easyrec_tokenizer *tok = NULL;
    REQUIRE(easyrec_tokenizer_load("../shared/vocab/roberta-base", &tok) == EASYREC_OK);
    const char *dirs[] = {ER_FIXTURES "/train/data/d1", ER_FIXTURES "/train/data/d2"};
    er_train_data td;
    REQUIRE(er_train_data_open(&td, dirs, 2, tok, 7, 64, 5, 0.15f, 3) == EASYREC_OK);
    size_t n = td.n_ex, group = 4, full = 0, cnt[2] = {0, 0};
    for (size_t i = 0; i < n; i++) cnt[td.ex[i].d]++;
    REQUIRE(cnt[0] >= group && cnt[1] >= group);
    full = cnt[0] / group * group + cnt[1] / group * group;
    size_t *mixed = malloc(n * sizeof(size_t)), *grouped = malloc(n * sizeof(size_t));
    char *seen = calloc(n, 1);
    REQUIRE(er_train_data_epoch_order(&td, 1, 0, mixed) == EASYREC_OK);
    REQUIRE(er_train_data_epoch_order(&td, 1, group, grouped) == EASYREC_OK);
    int perm_ok = 1, one_domain = 1, mixed_somewhere = 0;
    for (size_t i = 0; i < n; i++) {
        if (grouped[i] >= n || seen[grouped[i]]++) perm_ok = 0;
        if (i < full && td.ex[grouped[i]].d != td.ex[grouped[i - i % group]].d) one_domain = 0;
        if (i % group && td.ex[mixed[i]].d != td.ex[mixed[i - i % group]].d) mixed_somewhere = 1;
    }
    CHECK(perm_ok);
    CHECK(one_domain);
    CHECK(mixed_somewhere); /* the default order does mix datasets within a step */
    /* another epoch, another order */
    size_t *next = malloc(n * sizeof(size_t));
    REQUIRE(er_train_data_epoch_order(&td, 2, group, next) == EASYREC_OK);
    CHECK(memcmp(next, grouped, n * sizeof(size_t)) != 0);
    free(mixed), free(grouped), free(next), free(seen);
    er_train_data_free(&td);
    easyrec_tokenizer_free(tok);
    /* end to end; resuming without the flag is refused (it fixes the data order) */
    setup();
    REQUIRE(check_sh(TRAIN " --val-data none --threads 2 --domain-batches --max-steps 2 --output %s/dom", check_bin(), tmp,
                     tmp) == 0);
    CHECK(check_sh(TRAIN " --val-data none --threads 2 --output %s/dom --resume 2>/dev/null", check_bin(), tmp, tmp) == 1);
    CHECK(check_sh(TRAIN " --val-data none --threads 2 --domain-batches --output %s/dom --resume", check_bin(), tmp, tmp) == 0);
}

/* an output that holds training state is refused without --resume or --overwrite (nothing
 * written: the log keeps its lines); --overwrite starts again */
TEST(existing_training_state_is_not_overwritten) {
    setup();
    REQUIRE(check_sh(TRAIN " --val-data none --threads 2 --max-steps 2 --output %s/ow", check_bin(), tmp, tmp) == 0);
    CHECK(check_sh("test $(wc -l < %s/ow/train_log.jsonl) -eq 2", tmp) == 0);
    CHECK(check_sh(TRAIN " --val-data none --threads 2 --max-steps 1 --output %s/ow 2>%s/ow.err", check_bin(), tmp, tmp,
                   tmp) == 1);
    CHECK(check_sh("grep -q -- '--resume, or start again with --overwrite' %s/ow.err", tmp) == 0);
    CHECK(check_sh("test $(wc -l < %s/ow/train_log.jsonl) -eq 2", tmp) == 0);
    CHECK(check_sh(TRAIN " --val-data none --threads 2 --max-steps 1 --output %s/ow --overwrite", check_bin(), tmp,
                   tmp) == 0);
    CHECK(check_sh("test $(wc -l < %s/ow/train_log.jsonl) -eq 1", tmp) == 0);
    CHECK(check_sh(TRAIN " --output %s/ow --overwrite --resume 2>/dev/null", check_bin(), tmp, tmp) == 2);
    /* --resume without a state says so */
    CHECK(check_sh(TRAIN " --val-data none --output %s/never --resume 2>%s/nv.err", check_bin(), tmp, tmp, tmp) == 1);
    CHECK(check_sh("grep -q 'no training state to resume' %s/nv.err", tmp) == 0);
}

/* --max-steps leaves a loadable model in OUTPUT/; resuming with the same --max-steps runs no
 * further step */
TEST(max_steps_leaves_a_model_and_resume_stops_there) {
    setup();
    REQUIRE(check_sh(TRAIN " --val-data none --threads 2 --max-steps 3 --output %s/ms", check_bin(), tmp, tmp) == 0);
    CHECK(check_sh("printf 'a tent for two\\n' | %s encode --model %s/ms --text --input /dev/stdin --output %s/ms.npy "
                   "--threads 1 2>/dev/null",
                   check_bin(), tmp, tmp) == 0);
    CHECK(check_sh("cmp -s %s/ms/model.safetensors %s/ms/checkpoint-last/model.safetensors", tmp, tmp) == 0);
    REQUIRE(check_sh(TRAIN " --val-data none --threads 2 --max-steps 3 --output %s/ms --resume", check_bin(), tmp, tmp) ==
            0);
    CHECK(check_sh("test $(wc -l < %s/ms/train_log.jsonl) -eq 3", tmp) == 0);
    CHECK(check_sh("grep -q '\"step\": 3,' %s/ms/checkpoint-last/trainer_state.json", tmp) == 0);
    /* with validation on and none run yet, the stop still leaves a model */
    REQUIRE(check_sh(TRAIN " --threads 2 --max-steps 1 --eval-steps 100 --output %s/ms2", check_bin(), tmp, tmp) == 0);
    CHECK(check_sh("test -f %s/ms2/model.safetensors && test -f %s/ms2/vocab.json", tmp, tmp) == 0);
}

/* --max-length beyond the position table: an error naming the limit, before any allocation
 * for it (a 60000-token cap would need tens of GB) */
TEST(max_length_beyond_positions_is_refused) {
    setup();
    CHECK(check_sh(TRAIN " --val-data none --max-length 60000 --output %s/ml 2>%s/ml.err", check_bin(), tmp, tmp, tmp) ==
          1);
    CHECK(check_sh("grep -q 'max-length 60000 exceeds .*(512)' %s/ml.err", tmp) == 0);
    CHECK(check_sh("test ! -e %s/ml", tmp) == 0);
}

/* in-process: the library prints nothing; progress comes through the callback; the cancel
 * flag stops after the current step with the state saved; the log is valid JSON lines even
 * when a set name needs escaping */
typedef struct {
    int steps, evals, stopped;
    volatile sig_atomic_t *cancel;
    long cancel_at;
} events;

static void on_event(void *user, const er_train_event *ev) {
    events *e = user;
    if (ev->kind == ER_TRAIN_STEP) e->steps++;
    if (ev->kind == ER_TRAIN_EVAL) e->evals++;
    if (ev->kind == ER_TRAIN_STOPPED) e->stopped++;
    if (ev->kind == ER_TRAIN_STEP && ev->step == e->cancel_at) *e->cancel = 1;
}

TEST(library_prints_nothing_reports_progress_and_cancels) {
    setup();
    char init[128], out[128], quoted[128], err[128];
    snprintf(init, sizeof init, "%s/init", tmp);
    snprintf(out, sizeof out, "%s/lib", tmp);
    snprintf(quoted, sizeof quoted, "%s/d\"1\\x", tmp); /* a dataset path JSON must escape */
    snprintf(err, sizeof err, "%s/lib.err", tmp);
    REQUIRE(check_sh("ln -sfn $(realpath %s/train/data/d1) '%s'", ER_FIXTURES, quoted) == 0);
    const char *data[] = {ER_FIXTURES "/train/data/d1", ER_FIXTURES "/train/data/d2"}, *val[] = {quoted};
    er_train_opts o;
    er_train_opts_init(&o);
    o.init_dir = init, o.data = data, o.n_data = 2, o.val = val, o.n_val = 1, o.output = out;
    o.epochs = 3, o.batch = 3, o.accum = 2, o.lr = 1e-3f, o.eval_steps = 2, o.threads = 2;
    volatile sig_atomic_t cancel = 0;
    events ev = {0, 0, 0, &cancel, 5};
    o.progress = on_event, o.progress_user = &ev, o.cancel = &cancel;
    fflush(stderr);
    int saved = dup(2), fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    int rc = er_train_run(&o);
    fflush(stderr);
    dup2(saved, 2);
    close(fd), close(saved);
    if (rc) printf("    %s\n", easyrec_last_error());
    REQUIRE(rc == EASYREC_OK);
    CHECK(check_sh("test ! -s %s", err) == 0); /* not a byte on stderr */
    CHECK_EQ_INT(ev.steps, 5);
    CHECK_EQ_INT(ev.evals, 2); /* steps 2 and 4 */
    CHECK_EQ_INT(ev.stopped, 1);
    CHECK(check_sh("grep -q '\"step\": 5,' %s/checkpoint-last/trainer_state.json", out) == 0);
    /* every log line parses; the eval lines carry the escaped set name */
    char logp[160];
    snprintf(logp, sizeof logp, "%s/train_log.jsonl", out);
    FILE *f = fopen(logp, "r");
    REQUIRE(f);
    char line[8192];
    int lines = 0, named = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        CHECK(j != NULL);
        json_t *e = j ? json_object_get(j, "eval") : NULL;
        const char *key;
        json_t *v;
        if (e) json_object_foreach(e, key, v) named += strstr(key, "d\"1\\x/") != NULL;
        json_decref(j);
        lines++;
    }
    fclose(f);
    CHECK_EQ_INT(lines, 5 + 2);
    CHECK(named >= 2);
}

TEST(cleanup) {
    if (!tmp[0]) SKIP("nothing to clean");
    CHECK(check_sh("rm -rf %s", tmp) == 0);
}

CHECK_MAIN(CASE(resume_is_bit_exact_and_threads_do_not_matter), CASE(sigterm_saves_state_and_resume_completes),
           CASE(validation_selects_and_writes_a_loadable_checkpoint),
           CASE(gradient_caching_equals_one_large_batch), CASE(domain_batches_keep_each_step_in_one_dataset),
           CASE(existing_training_state_is_not_overwritten), CASE(max_steps_leaves_a_model_and_resume_stops_there),
           CASE(max_length_beyond_positions_is_refused), CASE(library_prints_nothing_reports_progress_and_cancels),
           CASE(cleanup))

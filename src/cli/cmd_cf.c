/* cmd_cf.c — `easyrec cf`: LightGCN / GCCF on a dataset's training interactions, plain or
 * aligned to text embeddings (RLMRec-Con / -Gen); early stopping on validation Recall@20,
 * test Recall/NDCG@{5,10,20}. The work is in src/cf/; the pipeline in docs/cf.md. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf/cf.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "core/err.h"
#include "io/tensors.h"

static void progress(void *user, int epoch, const er_cf_losses *l, double r20, double sec) {
    if (*(int *)user) return;
    fprintf(stderr, "epoch %d  loss %.5f (bpr %.5f reg %.3g align %.5f)  %.2fs", epoch, l->total, l->bpr, l->reg,
            l->align, sec);
    if (r20 >= 0) fprintf(stderr, "  val Recall@20 %.4f", r20);
    fputc('\n', stderr);
}

/* Read U.npy,I.npy and check them against the dataset's users and items. */
static int read_text_emb(const char *spec, er_dataset *ds, float **tu, float **ti, int *H) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", spec);
    char *comma = strchr(buf, ',');
    if (!comma || strchr(comma + 1, ','))
        return er_error(EASYREC_ERR_ARG, "--text-emb wants USERS.npy,ITEMS.npy, got '%s'", spec);
    *comma = 0;
    const char *path[2] = {buf, comma + 1};
    float *d[2] = {NULL, NULL};
    int64_t sh[2][ER_MAX_DIMS];
    for (int k = 0; k < 2; k++) {
        int nd, rc = er_npy_read_f32(path[k], &d[k], &nd, sh[k]);
        if (rc) {
            free(d[0]);
            return rc;
        }
        if (nd != 2 || sh[k][1] < 1) {
            free(d[0]), free(d[1]);
            return er_error(EASYREC_ERR_FORMAT, "%s: text embeddings must be a 2-D array [rows, dim]", path[k]);
        }
    }
    if (sh[0][1] != sh[1][1]) {
        free(d[0]), free(d[1]);
        return er_error(EASYREC_ERR_FORMAT, "--text-emb: user width %lld differs from item width %lld",
                        (long long)sh[0][1], (long long)sh[1][1]);
    }
    /* text files with numeric ids: embeddings may cover ids nobody interacted with */
    if (ds->from_text && sh[0][0] <= ER_CSR_MAX_DIM && sh[1][0] <= ER_CSR_MAX_DIM)
        er_dataset_grow(ds, (int32_t)sh[0][0], (int32_t)sh[1][0]), er_clear_error();
    int64_t want[2] = {ds->n_users, ds->n_items};
    static const char *const side[2] = {"users", "items"};
    for (int k = 0; k < 2; k++)
        if (sh[k][0] != want[k]) {
            int64_t got = sh[k][0];
            free(d[0]), free(d[1]);
            return er_error(EASYREC_ERR_FORMAT,
                            "%s: %lld rows, but the dataset has %lld %s (rows must be the dense %s ids 0..%lld, "
                            "as easyrec encode / eval --cache write them)",
                            path[k], (long long)got, (long long)want[k], side[k], side[k], (long long)want[k] - 1);
        }
    *tu = d[0], *ti = d[1];
    *H = (int)sh[0][1];
    return EASYREC_OK;
}

#define O(n, t, d, m, h) {.name = n, .type = t, .dst = d, .meta = m, .help = h}
#define OR(n, t, d, m, h, lo, hi) {.name = n, .type = t, .dst = d, .meta = m, .help = h, .min = lo, .max = hi}
#define OC(n, d, h, ch) {.name = n, .type = OPT_CHOICE, .dst = d, .help = h, .choices = ch}

int cmd_cf(int argc, char **argv) {
    const char *data = NULL, *trn = NULL, *val = NULL, *tst = NULL, *text = NULL, *save = NULL;
    int algo = 0, align = 0, layers = 3, dim = 32, batch = 4096, test_step = 3, patience = 5, max_epochs = 3000;
    int threads = 0, resume = 0, json = 0, quiet = 0;
    double lr = 1e-3, reg = 0, kdw = 0, kdt = 0, mask = 0, keep = 0.8;
    int64_t seed = 2024;
    cli_opt opts[] = {
        OC("algo", &algo, "graph model", "lightgcn|gccf"),
        O("data", OPT_STR, &data, "DIR", "dataset in the EasyRec layout (trn/val/tst_mat.pkl)"),
        O("train", OPT_STR, &trn, "FILE", "or: training interactions (TSV user<TAB>item, or RecBole .inter)"),
        O("val", OPT_STR, &val, "FILE", "validation interactions (with --train; early stopping)"),
        O("test", OPT_STR, &tst, "FILE", "test interactions (with --train)"),
        O("text-emb", OPT_STR, &text, "U.npy,I.npy",
         "text embeddings [n_users, H] and [n_items, H], rows = dense ids (easyrec encode / eval --cache)"),
        OC("align", &align, "alignment to the text embeddings: RLMRec-Con or -Gen", "none|con|gen"),
        OR("layers", OPT_INT, &layers, "L", "propagation layers (default: per algo/align, docs/cf.md)", 0, 64),
        OR("dim", OPT_INT, &dim, "D", "embedding width", 1, 4096),
        OR("lr", OPT_DOUBLE, &lr, "X", "Adam learning rate", 1e-9, 10),
        OR("batch-size", OPT_INT, &batch, "B", "training triples per step", 1, 1 << 24),
        OR("reg", OPT_DOUBLE, &reg, "W", "L2 weight over all parameters (default: per algo/align, docs/cf.md)", 0, 1e3),
        OR("kd-weight", OPT_DOUBLE, &kdw, "W", "con: kd weight; gen: reconstruction weight (default: per algo/align)",
         0, 1e6),
        OR("kd-temp", OPT_DOUBLE, &kdt, "T", "con: kd temperature; gen: reconstruction temperature (default: per "
         "algo/align)", 0.01, 100),
        OR("mask-ratio", OPT_DOUBLE, &mask, "R", "gen: fraction of nodes masked per step (default: per algo)", 1e-9, 1),
        OR("keep-rate", OPT_DOUBLE, &keep, "P", "LightGCN edge keep probability in training", 1e-6, 1),
        OR("test-step", OPT_INT, &test_step, "N", "validate every N epochs", 1, 1 << 30),
        OR("patience", OPT_INT, &patience, "N", "stop after N validations without improvement", 1, 1 << 30),
        OR("max-epochs", OPT_INT, &max_epochs, "N", "epoch limit", 1, 1 << 30),
        OR("seed", OPT_I64, &seed, "N", "initialisation, negatives, dropout and masks", 0, 9e15),
        {.name = "threads", .type = OPT_INT, .dst = &threads, .meta = "N", .help = "threads (default: all cores)", .max = 4096, .env = "EASYREC_THREADS"},
        O("save", OPT_STR, &save, "DIR",
         "checkpoint DIR/cf_state.bin after each validation; DIR/user_emb.npy, item_emb.npy at the end"),
        O("resume", OPT_FLAG, &resume, NULL, "continue from --save DIR's checkpoint when present"),
        O("json", OPT_FLAG, &json, NULL, "print one JSON object with the results"),
        O("quiet", OPT_FLAG, &quiet, NULL, "no progress on stderr"),
        {.name = NULL}};
    cli_cmd cmd = {"cf", "--algo lightgcn|gccf (--data DIR | --train F --test F [--val F]) [options]",
                   "Graph collaborative filtering (LightGCN, GCCF), optionally aligned to text embeddings\n"
                   "(RLMRec-Con / RLMRec-Gen). Pipeline: docs/cf.md.",
                   opts, 0, 0, NULL};
    int prc = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (prc == OPT_HELP) return 0;
    if (prc) return prc;
    if (!data == !trn) return opt_usage_error(&cmd, "give --data DIR or --train FILE (with --test)");
    if (trn && !tst) return opt_usage_error(&cmd, "--train needs --test");
    if (data && (val || tst)) return opt_usage_error(&cmd, "--val/--test go with --train, not --data");
    if (align && !text) return opt_usage_error(&cmd, "--align %s needs --text-emb", align == 1 ? "con" : "gen");
    if (!align && text) return opt_usage_error(&cmd, "--text-emb is only used with --align con|gen");
    if (resume && !save) return opt_usage_error(&cmd, "--resume needs --save DIR");
    er_cf_config c;
    er_cf_config_defaults(&c, (er_cf_algo)algo, (er_cf_align)align);
    if (opt_find(&cmd, "layers")->seen) c.layers = layers;
    if (opt_find(&cmd, "reg")->seen) c.reg = reg;
    if (opt_find(&cmd, "kd-weight")->seen) c.kd_weight = kdw;
    if (opt_find(&cmd, "kd-temp")->seen) c.kd_temp = kdt;
    if (opt_find(&cmd, "mask-ratio")->seen) c.mask_ratio = mask;
    if (opt_find(&cmd, "keep-rate")->seen || algo == ER_CF_LIGHTGCN) c.keep_rate = keep;
    c.dim = dim;
    c.lr = lr;
    if (threads <= 0) {
        long np = sysconf(_SC_NPROCESSORS_ONLN);
        threads = np > 0 ? (int)np : 1;
    }
    c.threads = threads;

    er_dataset ds;
    int rc = data ? er_dataset_open_dir(data, &ds) : er_dataset_open_text(trn, val, tst, NULL, NULL, &ds);
    if (rc) return cli_fail(NULL);
    if (!ds.has_split[ER_SPLIT_TRN]) {
        er_dataset_free(&ds);
        return cli_fail("cf: the dataset has no training split (trn_mat.pkl)");
    }
    float *tu = NULL, *ti = NULL;
    int H = 0;
    if (text && (rc = read_text_emb(text, &ds, &tu, &ti, &H))) {
        er_dataset_free(&ds);
        return cli_fail(NULL);
    }
    er_rng rng;
    er_rng_seed(&rng, (uint64_t)seed);
    er_cf_model *m = NULL;
    rc = er_cf_model_new(&c, &ds.split[ER_SPLIT_TRN], tu, ti, H, &rng, &m);
    free(tu), free(ti);
    if (rc) {
        er_dataset_free(&ds);
        return cli_fail(NULL);
    }
    er_cf_fit_opts fo = {.batch = batch, .test_step = test_step, .patience = patience, .max_epochs = max_epochs,
                         .seed = (uint64_t)seed, .save_dir = save, .resume = resume, .on_epoch = progress,
                         .user = &quiet};
    er_cf_result res;
    rc = er_cf_fit(m, &ds, &fo, &res);
    if (!rc && save) {
        const float *F = er_cf_embeddings(m);
        int64_t su[2] = {er_cf_n_users(m), er_cf_out_dim(m)}, si[2] = {er_cf_n_items(m), er_cf_out_dim(m)};
        char *pu = er_path_join(save, "user_emb.npy"), *pi = er_path_join(save, "item_emb.npy");
        rc = !pu || !pi ? EASYREC_ERR_NOMEM : er_npy_write_f32(pu, F, 2, su);
        if (!rc) rc = er_npy_write_f32(pi, F + (size_t)su[0] * su[1], 2, si);
        free(pu), free(pi);
    }
    if (rc) {
        er_cf_model_free(m);
        er_dataset_free(&ds);
        return cli_fail(NULL);
    }
    static const char *const algos[] = {"lightgcn", "gccf"}, *const aligns[] = {"none", "con", "gen"};
    if (json) {
        json_t *o = json_object(), *cfg = json_object();
        json_object_set_new(cfg, "algo", json_string(algos[algo]));
        json_object_set_new(cfg, "align", json_string(aligns[align]));
        json_object_set_new(cfg, "layers", json_integer(c.layers));
        json_object_set_new(cfg, "dim", json_integer(c.dim));
        json_object_set_new(cfg, "lr", json_real(c.lr));
        json_object_set_new(cfg, "reg", json_real(c.reg));
        json_object_set_new(cfg, "keep_rate", json_real(c.keep_rate));
        if (align) {
            json_object_set_new(cfg, "kd_weight", json_real(c.kd_weight));
            json_object_set_new(cfg, "kd_temp", json_real(c.kd_temp));
            json_object_set_new(cfg, "text_dim", json_integer(H));
        }
        if (align == ER_CF_ALIGN_GEN) json_object_set_new(cfg, "mask_ratio", json_real(c.mask_ratio));
        json_object_set_new(cfg, "batch_size", json_integer(batch));
        json_object_set_new(cfg, "seed", json_integer(seed));
        json_object_set_new(o, "config", cfg);
        json_object_set_new(o, "users", json_integer(ds.n_users));
        json_object_set_new(o, "items", json_integer(ds.n_items));
        json_object_set_new(o, "epochs", json_integer(res.epochs_run));
        json_object_set_new(o, "best_epoch", json_integer(res.best_epoch));
        json_object_set_new(o, "seconds_per_epoch",
                            json_real(res.epochs_run > 0 ? res.seconds_train / res.epochs_run : 0.0));
        const char *sn[2] = {"val", "test"};
        int has[2] = {res.has_val, res.has_tst};
        double *rr[2] = {res.val_recall, res.tst_recall}, *nn[2] = {res.val_ndcg, res.tst_ndcg};
        for (int s = 0; s < 2; s++) {
            if (!has[s]) continue;
            json_t *j = json_object();
            for (int k = 0; k < ER_CF_NK; k++) {
                char key[32];
                snprintf(key, sizeof key, "recall@%d", er_cf_ks[k]);
                json_object_set_new(j, key, json_real(rr[s][k]));
                snprintf(key, sizeof key, "ndcg@%d", er_cf_ks[k]);
                json_object_set_new(j, key, json_real(nn[s][k]));
            }
            json_object_set_new(o, sn[s], j);
        }
        char *txt = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("%s\n", txt);
        free(txt);
        json_decref(o);
    } else {
        printf("%s%s%s  %d users x %d items  epochs %d  best epoch %d  %.3fs/epoch\n", algos[algo],
               align ? "+" : "", align ? aligns[align] : "", ds.n_users, ds.n_items, res.epochs_run,
               res.best_epoch, res.epochs_run > 0 ? res.seconds_train / res.epochs_run : 0.0);
        printf("%-6s", "split");
        for (int k = 0; k < ER_CF_NK; k++) printf("  Recall@%-3d NDCG@%-3d", er_cf_ks[k], er_cf_ks[k]);
        printf("\n");
        if (res.has_val) {
            printf("%-6s", "val");
            for (int k = 0; k < ER_CF_NK; k++) printf("  %-10.4f %-8.4f", res.val_recall[k], res.val_ndcg[k]);
            printf("\n");
        }
        if (res.has_tst) {
            printf("%-6s", "test");
            for (int k = 0; k < ER_CF_NK; k++) printf("  %-10.4f %-8.4f", res.tst_recall[k], res.tst_ndcg[k]);
            printf("\n");
        }
    }
    er_cf_model_free(m);
    er_dataset_free(&ds);
    return 0;
}

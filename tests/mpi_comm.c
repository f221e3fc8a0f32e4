/* mpi_comm.c — the MPI communicator (src/core/comm_mpi.c), MPI encode, train and eval, under
 * `mpirun -np 2|3 --oversubscribe` (run by `make test-mpi`, not `make test`). The same
 * binary is the test driver (no MPI environment) and the rank program (started by mpirun
 * with a mode argument): ranks check the collectives and print "rank R ok"; mode "die"
 * makes rank 1 exit while rank 0 waits in an all-reduce, and the job must end (no hang)
 * with a non-zero status. Skips when mpirun is absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/err.h"
#include "model/model.h"
#include "core/comm.h"

static char self[4096];
#define WORK "build-mpi/tests/mpi_comm.d"

static const char *mpirun_flags(void) {
    return getuid() == 0 ? "--allow-run-as-root --oversubscribe" : "--oversubscribe";
}

static void need_mpirun(void) {
    if (check_sh("command -v mpirun >/dev/null 2>&1")) SKIP("mpirun not installed (tools/setup.sh --mpi)");
}

/* In a rank's `sh -c '...'`: BAD on rank 1, GOOD on the others — a file present on some hosts
 * only, so rank 1 fails on its own while its peers go on to the next collective. */
#define ONLY_RANK1(BAD, GOOD) "$([ \"$OMPI_COMM_WORLD_RANK\" = 1 ] && echo " BAD " || echo " GOOD ")"

/* exit status of a job run under `timeout 120`: failed (not 0), and ended by itself (not 124) */
#define FAILED_NO_HANG(rc) ((rc) != 0 && (rc) != 124)

/* ---- rank programs ---- */
static int rank_collectives(er_comm *c) {
    int bad = 0, R = c->size, r = c->rank;
    float v[5];
    for (int i = 0; i < 5; i++) v[i] = (float)(r + 1) * (i + 1);
    if (c->allreduce_sum_f32(c, v, 5)) return printf("rank %d allreduce: %s\n", r, easyrec_last_error()), 1;
    for (int i = 0; i < 5; i++) bad |= v[i] != (float)(R * (R + 1) / 2) * (i + 1);
    /* uneven all-gather: rank q sends q+1 floats of value 10q + j */
    size_t counts[16], total = 0;
    for (int q = 0; q < R; q++) counts[q] = (size_t)q + 1, total += counts[q];
    float send[16], recv[256];
    for (int j = 0; j <= r; j++) send[j] = 10.f * r + j;
    if (c->allgatherv_f32(c, send, (size_t)r + 1, recv, counts))
        return printf("rank %d allgatherv: %s\n", r, easyrec_last_error()), 1;
    size_t k = 0;
    for (int q = 0; q < R; q++)
        for (int j = 0; j <= q; j++) bad |= recv[k++] != 10.f * q + j;
    bad |= k != total;
    /* in place: own slice already at its offset */
    for (size_t i = 0; i < total; i++) recv[i] = -1;
    size_t off = 0;
    for (int q = 0; q < r; q++) off += counts[q];
    for (int j = 0; j <= r; j++) recv[off + j] = 10.f * r + j;
    if (c->allgatherv_f32(c, recv + off, (size_t)r + 1, recv, counts)) return 1;
    k = 0;
    for (int q = 0; q < R; q++)
        for (int j = 0; j <= q; j++) bad |= recv[k++] != 10.f * q + j;
    /* doubles keep their bits: rank q sends q+1 values 1 + 1e-12 (10q + j) */
    double ds[16], dr[256];
    for (int j = 0; j <= r; j++) ds[j] = 1.0 + 1e-12 * (10 * r + j);
    if (c->allgatherv_f64(c, ds, (size_t)r + 1, dr, counts)) return 1;
    k = 0;
    for (int q = 0; q < R; q++)
        for (int j = 0; j <= q; j++) bad |= dr[k++] != 1.0 + 1e-12 * (10 * q + j);
    char msg[32] = {0};
    if (r == 0) strcpy(msg, "hello from 0");
    if (c->bcast(c, msg, sizeof msg, 0) || c->barrier(c)) return 1;
    bad |= strcmp(msg, "hello from 0") != 0;
    printf("rank %d of %d %s\n", r, R, bad ? "WRONG" : "ok");
    return bad;
}

static int rank_main(const char *mode) {
    er_comm *c;
    if (er_comm_mpi_open(&c)) {
        printf("open: %s\n", easyrec_last_error());
        return 1;
    }
    int rc = 0;
    if (!strcmp(mode, "collectives")) {
        rc = rank_collectives(c);
    } else if (!strcmp(mode, "die")) {
        if (c->rank == 1) _exit(3); /* dies without MPI_Finalize */
        float x = 1;
        rc = c->allreduce_sum_f32(c, &x, 1) ? 1 : 0; /* rank 0 waits here for a dead peer */
        printf("rank %d returned from the all-reduce (rc %d)\n", c->rank, rc);
    }
    er_comm_mpi_close(c);
    return rc;
}

/* ---- driver ---- */
TEST(collectives_2_and_3_ranks) {
    need_mpirun();
    for (int np = 2; np <= 3; np++) {
        CHECK(check_sh("mpirun %s -np %d %s collectives > " WORK "/coll.out 2>&1", mpirun_flags(), np, self) == 0);
        for (int r = 0; r < np; r++) CHECK(check_sh("grep -q 'rank %d of %d ok' " WORK "/coll.out", r, np) == 0);
        if (check_cur_failed) check_sh("cat " WORK "/coll.out");
    }
}

TEST(dead_rank_ends_the_job) {
    need_mpirun();
    /* timeout: a hang fails the test instead of the suite */
    int rc = check_sh("timeout 120 mpirun %s -np 2 %s die > " WORK "/die.out 2>&1", mpirun_flags(), self);
    CHECK(rc != 0 && rc != 124);
    CHECK(check_sh("grep -qi 'rank 1\\|exited\\|abort' " WORK "/die.out") == 0);
    if (check_cur_failed) check_sh("cat " WORK "/die.out");
}

TEST(encode_sharded_equals_one_process) {
    need_mpirun();
    const char *B = check_bin();
    if (!check_shared_dir()) SKIP("../shared/vocab absent");
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output " WORK "/model --layers 2 --hidden 32 "
                     "--heads 4 --ffn 64 >/dev/null 2>&1",
                     B) == 0);
    /* 41 texts of different lengths (different padding per batch), as JSON lines */
    FILE *f = fopen(WORK "/p.jsonl", "w");
    REQUIRE(f);
    for (int i = 0; i < 41; i++) {
        fprintf(f, "{\"user_id\": %d, \"profile\": \"user %d likes", i, i);
        for (int j = 0; j < (i * 7) % 23; j++) fprintf(f, " item%d", (i + j) % 11);
        fprintf(f, ".\"}\n");
    }
    fclose(f);
    REQUIRE(check_sh("%s encode --model " WORK "/model --input " WORK "/p.jsonl --output " WORK "/one.npy --quiet "
                     "--threads 1 --batch-size 4",
                     B) == 0);
    for (int np = 2; np <= 3; np++) {
        CHECK(check_sh("rm -f " WORK "/n.npy && mpirun %s -np %d %s encode --model " WORK "/model --input " WORK
                       "/p.jsonl --output " WORK "/n.npy --quiet --threads 1 --batch-size 4",
                       mpirun_flags(), np, B) == 0);
        CHECK(check_sh("cmp " WORK "/one.npy " WORK "/n.npy") == 0);
    }
    /* no rank can read the model: every rank fails, nothing is written, no hang */
    int rc = check_sh("rm -f " WORK "/bad.npy; timeout 120 mpirun %s -np 2 %s encode --model " WORK
                      "/nomodel --input " WORK "/p.jsonl --output " WORK "/bad.npy --quiet >/dev/null 2>&1",
                      mpirun_flags(), B);
    CHECK(FAILED_NO_HANG(rc));
    CHECK(access(WORK "/bad.npy", F_OK) != 0);
    /* only rank 1 lacks the model, then only rank 1 lacks the input, while rank 0 encodes and
     * waits for the gather: both fail, nothing is written, no hang */
    const char *one[2][2] = {{ONLY_RANK1(WORK "/nomodel", WORK "/model"), WORK "/p.jsonl"},
                             {WORK "/model", ONLY_RANK1(WORK "/absent.jsonl", WORK "/p.jsonl")}};
    for (int c = 0; c < 2; c++) {
        rc = check_sh("rm -f " WORK "/bad.npy; timeout 120 mpirun %s -np 2 sh -c '%s encode --model %s --input %s "
                      "--output " WORK "/bad.npy --quiet --threads 1' > " WORK "/one.out 2>&1",
                      mpirun_flags(), B, one[c][0], one[c][1]);
        CHECK(FAILED_NO_HANG(rc));
        CHECK(access(WORK "/bad.npy", F_OK) != 0);
        if (check_cur_failed) check_sh("cat " WORK "/one.out");
    }
}

/* easyrec eval under mpirun: texts encoded and users ranked in shares, the same report as one
 * process (the JSON less its timing) — for the model (with and without the embedding cache,
 * an MPI-written cache read by one process) and a lexical baseline. The data: 600 users (3
 * ranking blocks of 256, so 2 and 3 ranks really split them) over 40 items, as text files. */
TEST(eval_sharded_equals_one_process) {
    need_mpirun();
    const char *B = check_bin();
    if (!check_shared_dir()) SKIP("../shared/vocab absent");
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output " WORK "/emodel --layers 2 --hidden 32 "
                     "--heads 4 --ffn 64 >/dev/null 2>&1",
                     B) == 0);
    FILE *ft = fopen(WORK "/trn.tsv", "w"), *fs = fopen(WORK "/tst.tsv", "w"), *fi = fopen(WORK "/items.jsonl", "w"),
         *fu = fopen(WORK "/users.jsonl", "w");
    REQUIRE(ft && fs && fi && fu);
    static const char *const words[] = {"jazz", "piano", "rock", "guitar", "drama", "space", "cooking", "travel"};
    for (int i = 0; i < 40; i++)
        fprintf(fi, "{\"item_id\": %d, \"profile\": \"an item about %s and %s\"}\n", i, words[i % 8], words[(i / 8) % 8]);
    for (int u = 0; u < 600; u++) {
        for (int j = 0; j < 3; j++) fprintf(ft, "%d\t%d\n", u, (u * 7 + j * 13) % 40);
        fprintf(fs, "%d\t%d\n", u, (u * 7 + 5) % 40);
        fprintf(fu, "{\"user_id\": %d, \"profile\": \"likes %s, not %s\"}\n", u, words[u % 8], words[(u / 8) % 8]);
    }
    fclose(ft), fclose(fs), fclose(fi), fclose(fu);
#define EVB "eval --train " WORK "/trn.tsv --test " WORK "/tst.tsv --item-profiles " WORK "/items.jsonl " \
            "--json --quiet --threads 1 --k 1,5,10"
#define EV EVB " --user-profiles " WORK "/users.jsonl"
#define NOTIME " | sed 's/, \"rank_seconds\": [^}]*//' > "
    REQUIRE(check_sh("%s " EV " --model " WORK "/emodel" NOTIME WORK "/e1.json", B) == 0);
    CHECK(check_sh("grep -q '\"n_users\": 600' " WORK "/e1.json && grep -q '\"recall@10\": 0\\.[0-9]*[1-9]' " WORK
                   "/e1.json") == 0); /* some hits: a real comparison */
    for (int np = 2; np <= 3; np++) {
        CHECK(check_sh("mpirun %s -np %d %s " EV " --model " WORK "/emodel" NOTIME WORK "/en.json", mpirun_flags(), np,
                       B) == 0);
        CHECK(check_sh("cmp " WORK "/e1.json " WORK "/en.json") == 0);
    }
    /* the cache: written under MPI (rank 0), read by one process and by the ranks again */
    CHECK(check_sh("mpirun %s -np 2 %s " EV " --model " WORK "/emodel --cache " WORK "/ecache" NOTIME WORK "/ec.json",
                   mpirun_flags(), B) == 0);
    CHECK(check_sh("ls " WORK "/ecache/*.npy >/dev/null 2>&1") == 0);
    CHECK(check_sh("%s " EV " --model " WORK "/emodel --cache " WORK "/ecache" NOTIME WORK "/ec1.json", B) == 0);
    CHECK(check_sh("mpirun %s -np 3 %s " EV " --model " WORK "/emodel --cache " WORK "/ecache" NOTIME WORK "/ec3.json",
                   mpirun_flags(), B) == 0);
    CHECK(check_sh("cmp " WORK "/e1.json " WORK "/ec.json && cmp " WORK "/e1.json " WORK "/ec1.json && cmp " WORK
                   "/e1.json " WORK "/ec3.json") == 0);
    REQUIRE(check_sh("%s " EV " --baseline bm25" NOTIME WORK "/b1.json", B) == 0);
    CHECK(check_sh("mpirun %s -np 3 %s " EV " --baseline bm25" NOTIME WORK "/b3.json", mpirun_flags(), B) == 0);
    CHECK(check_sh("cmp " WORK "/b1.json " WORK "/b3.json") == 0);
    /* no rank has the model: the job fails, no hang */
    int rc =
        check_sh("timeout 120 mpirun %s -np 2 %s " EV " --model " WORK "/nomodel >/dev/null 2>&1", mpirun_flags(), B);
    CHECK(FAILED_NO_HANG(rc));
    /* only rank 1 lacks the model (it fails before the ranks agree to start); only rank 1 lacks
     * its user profiles (read when the set is evaluated: rank 0 goes on to encode and all-gather
     * the items); the BM25 baseline likewise (rank 0 goes on to rank): the job fails, no hang */
    static const char *const one[] = {
        EV " --model " ONLY_RANK1(WORK "/nomodel", WORK "/emodel"),
        EVB " --model " WORK "/emodel --user-profiles " ONLY_RANK1(WORK "/absent.jsonl", WORK "/users.jsonl"),
        EVB " --baseline bm25 --user-profiles " ONLY_RANK1(WORK "/absent.jsonl", WORK "/users.jsonl")};
    for (int c = 0; c < 3; c++) {
        rc = check_sh("timeout 120 mpirun %s -np 2 sh -c '%s %s' > " WORK "/one.out 2>&1", mpirun_flags(), B, one[c]);
        CHECK(FAILED_NO_HANG(rc));
        CHECK(check_sh("grep -q 'absent.jsonl\\|nomodel' " WORK "/one.out") == 0); /* rank 1's own message */
        if (check_cur_failed) check_sh("cat " WORK "/one.out");
    }
    /* a dataset directory whose diverse set 0 is absent on rank 1's host: the ranks would
     * evaluate different sets (rank 0 three runs, rank 1 two), so they all fail up front */
    REQUIRE(check_sh("for r in 0 1; do rm -rf " WORK "/tiny$r && cp -r " ER_FIXTURES "/eval/tiny " WORK
                     "/tiny$r; done && rm " WORK "/tiny1/diverse_profile/diverse_*_0.json") == 0);
#define EVT "eval --baseline bm25 --user-text items:3 --quiet --threads 1 --data " WORK "/tiny"
    CHECK(check_sh("mpirun %s -np 2 %s " EVT "0 >/dev/null 2>&1", mpirun_flags(), B) == 0);
    rc = check_sh("timeout 120 mpirun %s -np 2 sh -c '%s " EVT "$OMPI_COMM_WORLD_RANK' > " WORK "/sets.out 2>&1",
                  mpirun_flags(), B);
    CHECK(FAILED_NO_HANG(rc));
    CHECK(check_sh("grep -q 'differ between the hosts' " WORK "/sets.out") == 0);
    if (check_cur_failed) check_sh("cat " WORK "/sets.out");
#undef EVT
#undef EVB
#undef EV
#undef NOTIME
}

/* largest |a - b| / (max |a| over the model + 1e-12) between two saved models' parameters */
static double model_rel_diff(const char *a, const char *b) {
    easyrec_model *ma = NULL, *mb = NULL;
    double d = 1e30;
    if (!easyrec_model_load(a, &ma) && !easyrec_model_load(b, &mb) && ma->nparams == mb->nparams) {
        double amax = 0, dmax = 0;
        for (size_t i = 0; i < ma->nparams; i++) {
            double x = fabs(ma->buf[i]), e = fabs((double)ma->buf[i] - mb->buf[i]);
            if (x > amax) amax = x;
            if (e > dmax) dmax = e;
        }
        d = dmax / (amax + 1e-12);
    }
    easyrec_model_free(ma);
    easyrec_model_free(mb);
    return d;
}

/* read column `key` of every line of a train_log.jsonl (at most cap values) */
static int log_values(const char *path, const char *key, double *v, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096], pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    int n = 0;
    while (n < cap && fgets(line, sizeof line, f)) {
        char *p = strstr(line, pat);
        if (p) v[n++] = strtod(p + strlen(pat), NULL);
    }
    fclose(f);
    return n;
}

/* mpirun -np 2 with batch b per rank == one process with a global batch of 2b (as b x 2
 * micro-batches by gradient caching: the same examples, dropout masks and contrastive loss
 * over all 2b). Not bit-identical: the gradient is summed in another order (two rank buffers
 * added by the all-reduce instead of one buffer accumulated in turn), a few ulps per step that
 * Adam carries on; tolerance 1e-4 relative. */
TEST(train_2_ranks_equals_one_process_global_batch) {
    need_mpirun();
    const char *B = check_bin();
    if (!check_shared_dir()) SKIP("../shared/vocab absent");
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output " WORK "/tinit --layers 1 --hidden 32 "
                     "--heads 2 --ffn 64 --seed 3 >/dev/null 2>&1",
                     B) == 0);
#define TR "%s train --init " WORK "/tinit --data " ER_FIXTURES "/train/data/d1," ER_FIXTURES "/train/data/d2 " \
           "--epochs 2 --lr 1e-3 --quiet --eval-steps 0 --val-data none --threads 1"
    REQUIRE(check_sh(TR " --batch-size 2 --grad-accum 2 --output " WORK "/t1", B) == 0);
    CHECK(check_sh("mpirun %s -np 2 " TR " --batch-size 2 --output " WORK "/t2", mpirun_flags(), B) == 0);
    double l1[64], l2[64];
    int n1 = log_values(WORK "/t1/train_log.jsonl", "loss", l1, 64), n2 = log_values(WORK "/t2/train_log.jsonl", "loss", l2, 64);
    CHECK(n1 > 4 && n1 == n2);
    for (int i = 0; i < n1 && i < n2; i++) CHECK_NEAR(l2[i], l1[i], 1e-4 * fabs(l1[i]));
    double d = model_rel_diff(WORK "/t1", WORK "/t2");
    printf("    %d steps, losses equal within 1e-4, weights differ by %.2g relative\n", n1, d);
    CHECK(d < 1e-4);
    /* --resume under MPI equals the uninterrupted MPI run bit for bit; a 2-rank state resumed by
     * one process with grad-accum 2 (the same global batch) finishes like the one-process run */
    CHECK(check_sh("mpirun %s -np 2 " TR " --batch-size 2 --max-steps 5 --output " WORK "/t4", mpirun_flags(), B) == 0);
    CHECK(check_sh("cmp -s " WORK "/t2/checkpoint-last/model.safetensors " WORK "/t4/checkpoint-last/model.safetensors") != 0);
    CHECK(check_sh("cp -r " WORK "/t4 " WORK "/t5") == 0);
    CHECK(check_sh("mpirun %s -np 2 " TR " --batch-size 2 --resume --output " WORK "/t4", mpirun_flags(), B) == 0);
    CHECK(check_sh("cmp " WORK "/t2/checkpoint-last/model.safetensors " WORK "/t4/checkpoint-last/model.safetensors") == 0);
    CHECK(check_sh("cmp " WORK "/t2/checkpoint-last/optimizer.bin " WORK "/t4/checkpoint-last/optimizer.bin") == 0);
    CHECK(check_sh(TR " --batch-size 2 --grad-accum 2 --resume --output " WORK "/t5", B) == 0);
    CHECK(model_rel_diff(WORK "/t1", WORK "/t5") < 1e-4);
    /* another global batch cannot resume it */
    CHECK(check_sh(TR " --batch-size 2 --resume --output " WORK "/t5 2>/dev/null", B) != 0);
    /* and it is a real comparison: another seed's run differs */
    REQUIRE(check_sh(TR " --batch-size 2 --grad-accum 2 --seed 5 --output " WORK "/t3", B) == 0);
    CHECK(model_rel_diff(WORK "/t1", WORK "/t3") > 1e-3);
}

int main(int argc, char **argv) {
    if (argc > 1) return rank_main(argv[1]);
    if (!realpath(argv[0], self)) snprintf(self, sizeof self, "%s", argv[0]);
    check_sh("rm -rf " WORK " && mkdir -p " WORK);
    static const check_case cases[] = {CASE(collectives_2_and_3_ranks), CASE(dead_rank_ends_the_job),
                                       CASE(encode_sharded_equals_one_process),
                                       CASE(train_2_ranks_equals_one_process_global_batch),
                                       CASE(eval_sharded_equals_one_process)};
    return check_run(cases, 5);
}

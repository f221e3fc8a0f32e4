/* batcher.c — the encoder pool and the recommend scoring queue (batcher.h). */
#include "serve/batcher.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"

void er_l2_normalize(float *x, int D) {
    double ss = 0.0;
    for (int k = 0; k < D; k++) ss += (double)x[k] * x[k];
    float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
    for (int k = 0; k < D; k++) x[k] *= inv;
}

/* ---- encoder pool ------------------------------------------------------------------------ */

/* One encoder thread takes everything queued (up to `threads` batches' worth of tokens) as a
 * round and encodes it with easyrec_encode_ids on `threads` OpenMP threads, split into at most
 * `threads` batches of about equal tokens, each within the budget. While a round runs, new
 * sequences queue up and make the next round: under load the rounds are as large as the
 * traffic allows (the weights of every Linear are packed once per batch, so small batches
 * cost several times more per sequence), and one request alone is encoded at once.
 * The batching window: when fewer sequences are queued than the last round took, the encoder
 * waits for as many, at most an eighth of the last round's time and at most WINDOW_MAX. Without
 * it, many clients split into two groups that alternate — a large round, then a small one of
 * the few that came back during it — and every small round costs a full pass over the weights. */

typedef struct job {
    const int32_t *const *ids;
    const int *n_ids;
    int n, next, remaining, rc;
    float *out;
    struct job *qnext;
    char why[512]; /* the encoder thread's message when rc != 0 (er_error's text is per thread) */
} job;

typedef struct {
    job *j;
    int i;
} slot;

#define WINDOW_MAX 0.010 /* seconds */

struct er_pool {
    const easyrec_model *m;
    er_pool_opts o;
    int D, stop, started;
    pthread_t th;
    easyrec_ctx *ctx;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    job *head, *tail;
    er_pool_stats st;
    slot *batch;        /* (cap) the round's sequences */
    const int32_t **ids; /* (cap) */
    int *n_ids;         /* (cap) */
    float *out;         /* (cap, D) */
    int cap;
};

static void *encoder_main(void *arg) {
    er_pool *p = arg;
    easyrec_encode_opts eo;
    easyrec_encode_opts_init(&eo);
    eo.max_length = p->o.max_length;
    eo.threads = p->o.threads;
    eo.pooling = p->o.pooling;
    eo.no_normalize = 1;
    const long budget = (long)p->o.max_batch_tokens * p->o.threads;
    int last_n = 0;
    double last_s = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) pthread_cond_wait(&p->work, &p->mu);
        if (!p->head) break;
        double window = last_s / 8 < WINDOW_MAX ? last_s / 8 : WINDOW_MAX, until = er_now() + window;
        while (p->st.queued < last_n && !p->stop && window > 0) {
            struct timespec ts = {(time_t)until, (long)((until - (double)(time_t)until) * 1e9)};
            if (pthread_cond_timedwait(&p->work, &p->mu, &ts)) break; /* timed out */
        }
        double t0 = er_now();
        int nb = 0, longest = 0;
        long tokens = 0;
        while (p->head && nb < p->cap) {
            job *j = p->head;
            int t = j->n_ids[j->next];
            if (nb > 0 && tokens + t > budget) break;
            p->batch[nb].j = j;
            p->batch[nb].i = j->next;
            p->ids[nb] = j->ids[j->next];
            p->n_ids[nb] = t;
            tokens += t;
            if (t > longest) longest = t;
            nb++;
            if (++j->next == j->n) {
                p->head = j->qnext;
                if (!p->head) p->tail = NULL;
            }
        }
        p->st.queued -= nb;
        pthread_mutex_unlock(&p->mu);
        /* at most `threads` batches of about tokens / threads each: a batch closes only when
         * the next sequence would pass share + longest, so it holds at least share tokens */
        int parts = p->o.threads < nb ? p->o.threads : nb;
        long share = (tokens + parts - 1) / parts + longest;
        eo.batch_tokens = (int)(share < p->o.max_batch_tokens ? share : p->o.max_batch_tokens);
        int rc = easyrec_encode_ids(p->ctx, p->ids, p->n_ids, (size_t)nb, &eo, p->out);
        char why[512] = "";
        if (rc) snprintf(why, sizeof why, "encoding a round of %d queued texts: %s", nb, easyrec_last_error());
        last_n = nb;
        last_s = er_now() - t0;
        pthread_mutex_lock(&p->mu);
        for (int b = 0; b < nb; b++) {
            job *j = p->batch[b].j;
            if (rc) {
                j->rc = rc;
                snprintf(j->why, sizeof j->why, "%s", why);
            } else
                memcpy(j->out + (size_t)p->batch[b].i * p->D, p->out + (size_t)b * p->D, (size_t)p->D * sizeof(float));
            j->remaining--;
        }
        p->st.batches++;
        p->st.sequences += (uint64_t)nb;
        p->st.tokens += (uint64_t)tokens;
        int bucket = 0;
        while (bucket < ER_BATCH_HIST - 1 && nb > (1 << bucket)) bucket++;
        p->st.batch_hist[bucket]++;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int er_pool_start(const easyrec_model *m, const er_pool_opts *o, er_pool **out) {
    ER_ASSERT(o->threads >= 1 && o->max_batch_tokens >= 2);
    er_pool *p = er_calloc(1, sizeof(*p));
    if (!p) return EASYREC_ERR_NOMEM;
    p->m = m;
    p->o = *o;
    p->D = easyrec_model_dim(m);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the window's deadline */
    pthread_cond_init(&p->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&p->done, NULL);
    size_t cap = (size_t)o->max_batch_tokens / 2 * (size_t)o->threads + 1; /* every sequence has >= 2 ids */
    p->cap = cap > INT32_MAX / 2 ? INT32_MAX / 2 : (int)cap;
    p->ctx = easyrec_ctx_new(m);
    p->batch = er_mallocarray((size_t)p->cap, sizeof(*p->batch));
    p->ids = er_mallocarray((size_t)p->cap, sizeof(*p->ids));
    p->n_ids = er_mallocarray((size_t)p->cap, sizeof(*p->n_ids));
    p->out = er_mallocarray((size_t)p->cap, (size_t)p->D * sizeof(float));
    if (p->ctx && p->batch && p->ids && p->n_ids && p->out && !pthread_create(&p->th, NULL, encoder_main, p)) p->started = 1;
    if (!p->started) {
        er_pool_stop(p);
        return er_error(EASYREC_ERR_NOMEM, "cannot start the encoder thread (%d threads)", o->threads);
    }
    *out = p;
    return EASYREC_OK;
}

void er_pool_stop(er_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    if (p->started) pthread_join(p->th, NULL);
    easyrec_ctx_free(p->ctx);
    free(p->batch);
    free(p->ids);
    free(p->n_ids);
    free(p->out);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p);
}

int er_pool_encode(er_pool *p, const int32_t *const *ids, const int *n_ids, int n, float *out) {
    if (n <= 0) return EASYREC_OK;
    for (int i = 0; i < n; i++)
        if (n_ids[i] > p->o.max_batch_tokens || n_ids[i] < 2)
            return er_error(EASYREC_ERR_ARG, "sequence %d has %d ids (2..%d)", i, n_ids[i], p->o.max_batch_tokens);
    job j = {ids, n_ids, n, 0, n, 0, out, NULL, ""};
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        return er_error(EASYREC_ERR_ARG, "encoder pool stopped");
    }
    if (p->tail) p->tail->qnext = &j;
    else p->head = &j;
    p->tail = &j;
    p->st.queued += n;
    pthread_cond_signal(&p->work);
    while (j.remaining > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return j.rc ? er_error(j.rc, "%s", j.why) : EASYREC_OK;
}

void er_pool_stats_get(er_pool *p, er_pool_stats *s) {
    pthread_mutex_lock(&p->mu);
    *s = p->st;
    pthread_mutex_unlock(&p->mu);
}

/* ---- recommend scoring queue -------------------------------------------------------------- */

typedef struct rjob {
    const float *q;
    int k;
    const int32_t *excl;
    int nexcl;
    er_hit *hits;
    int n_hits, done, rc;
    struct rjob *next;
    char why[512]; /* the scoring thread's message when rc != 0 (er_error's text is per thread) */
} rjob;

#define MAX_Q 64

struct er_scorer_q {
    const er_bf16_items *items;
    int dim, threads, stop;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    rjob *head;
    uint64_t batches, queries;
    float *Q;         /* (MAX_Q, D) */
    er_hit *hits;     /* (MAX_Q, kmax) */
    size_t hits_cap;
    int *nh;
    er_exclude *ex;
    er_rec_scratch scratch;
};

static void *scorer_main(void *arg) {
    er_scorer_q *s = arg;
    rjob *batch[MAX_Q];
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stop) pthread_cond_wait(&s->work, &s->mu);
        if (!s->head) break;
        int nb = 0, kmax = 1;
        while (s->head && nb < MAX_Q) {
            batch[nb] = s->head;
            s->head = s->head->next;
            if (batch[nb]->k > kmax) kmax = batch[nb]->k;
            nb++;
        }
        pthread_mutex_unlock(&s->mu);
        int rc = EASYREC_OK;
        if ((size_t)nb * kmax > s->hits_cap) {
            free(s->hits);
            s->hits = er_mallocarray((size_t)MAX_Q * kmax, sizeof(er_hit));
            s->hits_cap = s->hits ? (size_t)MAX_Q * kmax : 0;
            if (!s->hits) rc = EASYREC_ERR_NOMEM;
        }
        for (int b = 0; b < nb && !rc; b++) {
            memcpy(s->Q + (size_t)b * s->dim, batch[b]->q, (size_t)s->dim * sizeof(float));
            s->ex[b] = (er_exclude){batch[b]->excl, batch[b]->nexcl};
        }
        if (!rc) rc = er_recommend(s->items, s->Q, nb, kmax, s->ex, s->threads, &s->scratch, s->hits, s->nh);
        char why[512] = "";
        if (rc) snprintf(why, sizeof why, "%s", easyrec_last_error());
        pthread_mutex_lock(&s->mu);
        for (int b = 0; b < nb; b++) {
            rjob *j = batch[b];
            j->rc = rc;
            if (rc) snprintf(j->why, sizeof j->why, "%s", why);
            else {
                j->n_hits = s->nh[b] < j->k ? s->nh[b] : j->k;
                memcpy(j->hits, s->hits + (size_t)b * kmax, (size_t)j->n_hits * sizeof(er_hit));
            }
            j->done = 1;
        }
        s->batches++;
        s->queries += (uint64_t)nb;
        pthread_cond_broadcast(&s->done);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int er_scorer_q_start(const er_bf16_items *items, int threads, er_scorer_q **out) {
    er_scorer_q *s = er_calloc(1, sizeof(*s));
    if (!s) return EASYREC_ERR_NOMEM;
    s->items = items;
    int dim = s->dim = items->dim;
    s->threads = threads;
    s->Q = er_mallocarray(MAX_Q, (size_t)dim * sizeof(float));
    s->nh = er_calloc(MAX_Q, sizeof(int));
    s->ex = er_calloc(MAX_Q, sizeof(er_exclude));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->done, NULL);
    if (!s->Q || !s->nh || !s->ex || pthread_create(&s->th, NULL, scorer_main, s)) {
        free(s->Q);
        free(s->nh);
        free(s->ex);
        free(s);
        return er_error(EASYREC_ERR_NOMEM, "cannot start the scoring thread");
    }
    *out = s;
    return EASYREC_OK;
}

void er_scorer_q_stop(er_scorer_q *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    er_rec_scratch_free(&s->scratch);
    free(s->Q);
    free(s->hits);
    free(s->nh);
    free(s->ex);
    free(s);
}

int er_scorer_q_run(er_scorer_q *s, const float *q, int k, const int32_t *excl, int nexcl, er_hit *hits, int *n_hits) {
    ER_ASSERT(k >= 1);
    rjob j = {q, k, excl, nexcl, hits, 0, 0, 0, NULL, ""};
    pthread_mutex_lock(&s->mu);
    j.next = s->head; /* order inside a batch does not matter */
    s->head = &j;
    pthread_cond_signal(&s->work);
    while (!j.done) pthread_cond_wait(&s->done, &s->mu);
    pthread_mutex_unlock(&s->mu);
    *n_hits = j.n_hits;
    return j.rc ? er_error(j.rc, "%s", j.why) : EASYREC_OK;
}

void er_scorer_q_stats(er_scorer_q *s, uint64_t *batches, uint64_t *queries) {
    pthread_mutex_lock(&s->mu);
    *batches = s->batches;
    *queries = s->queries;
    pthread_mutex_unlock(&s->mu);
}

/* easyrec_task.c — EasyRec's step function (easyrec_task.h). */
#include "train/easyrec_task.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

int er_easyrec_task_init(er_easyrec_task *t, const easyrec_model *m, er_train_data *td,
                         const er_easyrec_task_opts *o) {
    memset(t, 0, sizeof(*t));
    t->m = m;
    t->td = td;
    t->o = *o;
    if (!t->o.comm) t->o.comm = er_comm_serial();
    int R = t->o.comm->size;
    t->per_step = (size_t)o->batch * o->accum * R;
    t->steps_per_epoch = (long)((td->n_ex + t->per_step - 1) / t->per_step);
    t->cur_epoch = -1;
    size_t C = (size_t)m->cfg.hidden, cap_tok = er_train_data_batch_tokens(td, o->batch);
    t->perm = er_mallocarray(td->n_ex, sizeof(size_t));
    t->mb = er_calloc((size_t)o->accum, sizeof(*t->mb));
    t->e_all = er_mallocarray(3 * t->per_step, C * sizeof(float));
    t->de_all = er_mallocarray(3 * t->per_step, C * sizeof(float));
    t->counts = er_calloc((size_t)R, sizeof(size_t));
    int rc = !t->perm || !t->mb || !t->e_all || !t->de_all || !t->counts ? EASYREC_ERR_NOMEM : EASYREC_OK;
    for (int i = 0; !rc && i < o->accum; i++) {
        t->mb[i].ids = er_mallocarray(cap_tok, sizeof(int32_t));
        t->mb[i].off = er_mallocarray((size_t)6 * o->batch + 1, sizeof(int));
        t->mb[i].labels = er_mallocarray(cap_tok, sizeof(int32_t));
        if (!t->mb[i].ids || !t->mb[i].off || !t->mb[i].labels) rc = EASYREC_ERR_NOMEM;
    }
    if (!rc) rc = er_step_init(&t->st, &m->cfg, o->batch, cap_tok, o->max_length, o->threads);
    if (!rc && (o->accum > 1 || R > 1)) rc = er_contrastive_init(&t->cl, (int)t->per_step, (int)C);
    if (rc) er_easyrec_task_free(t);
    return rc;
}

void er_easyrec_task_free(er_easyrec_task *t) {
    for (int i = 0; t->mb && i < t->o.accum; i++) free(t->mb[i].ids), free(t->mb[i].off), free(t->mb[i].labels);
    free(t->mb);
    er_step_free(&t->st);
    er_contrastive_free(&t->cl);
    free(t->perm), free(t->e_all), free(t->de_all), free(t->counts);
    memset(t, 0, sizeof(*t));
}

int er_easyrec_step(void *ctx, long step, float *grad, er_step_stats *out) {
    er_easyrec_task *t = ctx;
    const er_easyrec_task_opts *o = &t->o;
    const easyrec_model *m = t->m;
    int rc, C = m->cfg.hidden;
    long epoch = step / t->steps_per_epoch, within = step % t->steps_per_epoch;
    if (epoch != t->cur_epoch) {
        if ((rc = er_train_data_epoch_order(t->td, epoch, o->domain_batches ? t->per_step : 0, t->perm))) return rc;
        t->cur_epoch = epoch;
    }
    size_t n_ex = t->td->n_ex, first = (size_t)within * t->per_step;
    size_t take = n_ex - first < t->per_step ? n_ex - first : t->per_step;
    int micros = (int)((take + o->batch - 1) / o->batch);
    er_comm *comm = o->comm;
    int R = comm->size, r = comm->rank;
    /* this rank's micro-batches: [m_lo, m_hi) of the step's micros (all of them for one rank) */
    int m_lo = (int)((long)micros * r / R), m_hi = (int)((long)micros * (r + 1) / R);
    er_batch *mb = t->mb; /* mb[i - m_lo] is micro-batch i */
    for (int i = m_lo; i < m_hi; i++) {
        size_t left = take - (size_t)i * o->batch;
        int k = (int)(left < (size_t)o->batch ? left : (size_t)o->batch);
        if ((rc = er_train_data_batch(t->td, t->perm, epoch, first + (size_t)i * o->batch, k, &mb[i - m_lo]))) return rc;
    }
    er_params g;
    er_params_assign(&m->cfg, &g, grad);
    double lc = 0, lm = 0, t_comm = 0;
    uint64_t dseed = (o->seed * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)step << 20);
    if (micros == 1 && R == 1) {
        er_dropout d = {o->dropout, dseed};
        er_train_step(m, &g, &t->st, &mb[0], o->temp, o->mlm_weight, 1.0f, &d, &lc, &lm);
    } else {
        /* gradient caching: embeddings of every micro-batch, one contrastive loss, then each
         * micro-batch's backward with its rows of the embedding gradient. Micro-batch i's
         * (3k_i, C) embeddings go to de_all at row 3*off_i (off_i: examples before it), so each
         * rank's share is one contiguous run and the all-gather is in place. */
        int tot = (int)take;
        size_t my_off = (size_t)m_lo * o->batch;
        /* a rank's only micro-batch is forwarded once, whole, and kept for its backward; with
         * several, each is embedded now and forwarded again for its backward */
        int kept = m_hi - m_lo == 1;
        for (int i = m_lo; i < m_hi; i++) {
            er_dropout d = {o->dropout, dseed + (uint64_t)i};
            float *e = t->de_all + (size_t)3 * i * o->batch * C;
            if (kept)
                er_train_step_forward(m, &t->st, &mb[i - m_lo], &d, e);
            else
                er_train_embed(m, &t->st, &mb[i - m_lo], &d, e);
        }
        double tg = er_now();
        if (R > 1) {
            for (int q = 0; q < R; q++) {
                size_t lo = (size_t)((long)micros * q / R) * o->batch, hi = (size_t)((long)micros * (q + 1) / R) * o->batch;
                if (hi > take) hi = take;
                if (lo > take) lo = take;
                t->counts[q] = 3 * (hi - lo) * (size_t)C;
            }
            if ((rc = comm->allgatherv_f32(comm, t->de_all + 3 * my_off * C, t->counts[r], t->de_all, t->counts)))
                return rc;
        }
        t_comm += er_now() - tg;
        for (int i = 0; i < micros; i++) {
            size_t off = (size_t)i * o->batch;
            int k = (int)(take - off < (size_t)o->batch ? take - off : (size_t)o->batch);
            const float *src = t->de_all + 3 * off * C;
            for (int part = 0; part < 3; part++)
                memcpy(t->e_all + ((size_t)part * tot + off) * C, src + (size_t)part * k * C,
                       (size_t)k * C * sizeof(float));
        }
        lc = er_contrastive_loss(&t->cl, t->e_all, t->de_all, tot, C, o->temp);
        for (int i = m_lo; i < m_hi; i++) {
            er_dropout d = {o->dropout, dseed + (uint64_t)i};
            size_t off = (size_t)i * o->batch;
            int k = mb[i - m_lo].n;
            float *dmi = t->e_all; /* e_all is free now: gather this micro-batch's rows of de */
            for (int part = 0; part < 3; part++)
                memcpy(dmi + (size_t)part * k * C, t->de_all + ((size_t)part * tot + off) * C,
                       (size_t)k * C * sizeof(float));
            lm += (kept ? er_train_step_backward : er_train_step_cached)(m, &g, &t->st, &mb[i - m_lo], dmi,
                                                                         o->mlm_weight, 1.0f / micros, &d) /
                  micros;
        }
        if (R > 1) { /* the MLM loss of every rank's micro-batches, for the log */
            float lmf = (float)lm;
            double t0 = er_now();
            if ((rc = comm->allreduce_sum_f32(comm, &lmf, 1))) return rc;
            t_comm += er_now() - t0;
            lm = lmf;
        }
    }
    out->loss_cl = lc;
    out->loss_mlm = lm;
    out->loss = lc + o->mlm_weight * lm;
    out->examples = (double)take;
    out->t_comm = t_comm;
    return EASYREC_OK;
}

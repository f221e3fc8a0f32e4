/* model.c — LightGCN / GCCF (plain, +con, +gen) as the original's models (spec §6.2):
 * parameters, propagation forward and backward, one training step's loss and gradients,
 * Adam (er_adamw_step of train/optim.c with weight decay 0 = torch.optim.Adam).
 *
 * Forward (n = N + M nodes, d width, L layers, D output width):
 *   E⁰ (n, d) = [user; item] (gen: masked rows = mask token)
 *   E^{l+1} = Â_drop E^l          (LightGCN: Â with each entry kept with prob keep_rate,
 *                                  unscaled; GCCF: Â, no dropout)
 *   F (n, D) = Σ_l E^l (LightGCN, D = d) | [E⁰ | … | E^L] (GCCF, D = (L+1) d)
 * Backward (propagation is linear, so no activations are kept):
 *   LightGCN: G^L = dF, G^l = dF + Â_dropᵀ G^{l+1};  GCCF: G^L = dF_L, G^l = dF_l + Âᵀ G^{l+1};
 *   dE⁰ = G⁰ (gen: masked rows go to the mask token). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cf/cf.h"
#include "core/err.h"
#include "train/train.h"

typedef struct {
    float *p;
    size_t cap;
} buf;

struct er_cf_model {
    er_cf_config c;
    int32_t N, M, n;
    int d, D, L, H;
    er_cf_graph g;
    float *text; /* (n, H) users then items, or NULL */
    size_t np, off[ER_CF_NP], len[ER_CF_NP];
    float *p, *gr, *m1, *m2;
    long t;
    er_cf_mlp mlp, gmlp; /* weights and their gradients (views into p, gr) */
    float *val_drop;     /* (nnz) */
    uint8_t *keep;          /* (nnz) draw buffer */
    int32_t *perm, *seeds;  /* (n) */
    float *E0, *cur, *nxt, *F, *dF; /* (n, d) x3, (n, D) x2 */
    int emb_valid;
    /* con / gen work space, grown on demand */
    buf hpre, hact, P, dP, X, dh, ga, gb, dga, dgb, scratch, wts;
    int32_t *ids, *slot; /* con: (9B) batch index lists, (n) node -> list position or -1 */
    size_t ids_cap;
};

static int grow(buf *b, size_t n) {
    if (n <= b->cap) return 0;
    float *q = er_mallocarray(n, sizeof(float));
    if (!q) return EASYREC_ERR_NOMEM;
    free(b->p);
    b->p = q;
    b->cap = n;
    return 0;
}

void er_cf_config_defaults(er_cf_config *c, er_cf_algo algo, er_cf_align align) {
    memset(c, 0, sizeof(*c));
    c->algo = algo;
    c->align = align;
    c->layers = 3;
    c->dim = 32;
    c->keep_rate = algo == ER_CF_LIGHTGCN ? 0.8 : 1.0;
    c->lr = 1e-3;
    c->threads = 1;
    c->reg = 1e-6;
    if (align == ER_CF_ALIGN_CON) { /* EasyRec cf_rec, top-level blocks */
        if (algo == ER_CF_LIGHTGCN) c->reg = 1e-8, c->kd_weight = 1e-3, c->kd_temp = 0.1;
        else c->layers = 2, c->reg = 1e-6, c->kd_weight = 1e-2, c->kd_temp = 0.5;
    } else if (align == ER_CF_ALIGN_GEN) { /* RLMRec encoder, top-level blocks */
        if (algo == ER_CF_LIGHTGCN) c->reg = 1e-7, c->mask_ratio = 0.1, c->kd_weight = 0.1, c->kd_temp = 0.2;
        else c->reg = 1e-6, c->mask_ratio = 0.05, c->kd_weight = 0.1, c->kd_temp = 1.0;
    }
}

static void uniform_fill(er_rng *r, float *x, size_t n, double bound) {
    for (size_t k = 0; k < n; k++) x[k] = (float)((2.0 * er_rng_uniform(r) - 1.0) * bound);
}

int er_cf_model_new(const er_cf_config *c, const er_csr *trn, const float *tu, const float *ti, int H, er_rng *rng,
                    er_cf_model **out) {
    *out = NULL;
    if (c->layers < 0 || c->dim < 1 || !(c->keep_rate > 0 && c->keep_rate <= 1))
        return er_error(EASYREC_ERR_ARG, "cf: bad layers/dim/keep rate");
    if (c->align != ER_CF_ALIGN_NONE && (!tu || !ti || H < 1))
        return er_error(EASYREC_ERR_ARG, "cf: alignment needs user and item text embeddings");
    er_cf_model *m = calloc(1, sizeof(*m));
    if (!m) return er_error(EASYREC_ERR_NOMEM, "cf: out of memory");
    m->c = *c;
    if (m->c.threads < 1) m->c.threads = 1;
    m->N = trn->nrows;
    m->M = trn->ncols;
    m->n = m->N + m->M;
    m->d = c->dim;
    m->L = c->layers;
    m->D = c->algo == ER_CF_GCCF ? (c->layers + 1) * c->dim : c->dim;
    m->H = c->align != ER_CF_ALIGN_NONE ? H : 0;
    int rc = er_cf_graph_build(trn, c->algo == ER_CF_GCCF && c->align == ER_CF_ALIGN_NONE, &m->g);
    if (rc) {
        free(m);
        return rc;
    }
    size_t d = (size_t)m->d, D = (size_t)m->D;
    int in = 0, hid = 0, o = 0;
    if (c->align == ER_CF_ALIGN_CON) in = H, hid = (H + m->D) / 2, o = m->D;
    if (c->align == ER_CF_ALIGN_GEN) in = m->D, hid = (H + m->D) / 2, o = H;
    m->len[ER_CF_P_USER] = (size_t)m->N * d;
    m->len[ER_CF_P_ITEM] = (size_t)m->M * d;
    m->len[ER_CF_P_GCCFW] = c->algo == ER_CF_GCCF ? (size_t)m->L * d * d : 0;
    m->len[ER_CF_P_W1] = (size_t)hid * in;
    m->len[ER_CF_P_B1] = (size_t)hid;
    m->len[ER_CF_P_W2] = (size_t)o * hid;
    m->len[ER_CF_P_B2] = (size_t)o;
    m->len[ER_CF_P_MASK] = c->align == ER_CF_ALIGN_GEN ? d : 0;
    for (int k = 0; k < ER_CF_NP; k++) m->off[k] = m->np, m->np += m->len[k];
    size_t n = (size_t)m->n;
    m->p = er_calloc(m->np, sizeof(float));
    m->gr = er_calloc(m->np, sizeof(float));
    m->m1 = er_calloc(m->np, sizeof(float));
    m->m2 = er_calloc(m->np, sizeof(float));
    m->val_drop = er_mallocarray(m->g.nnz ? (size_t)m->g.nnz : 1, sizeof(float));
    m->keep = er_mallocarray(m->g.nnz ? (size_t)m->g.nnz : 1, 1);
    m->perm = er_mallocarray(n ? n : 1, sizeof(int32_t));
    m->seeds = er_mallocarray(n ? n : 1, sizeof(int32_t));
    m->E0 = er_mallocarray(n * d + 1, sizeof(float));
    m->cur = er_mallocarray(n * d + 1, sizeof(float));
    m->nxt = er_mallocarray(n * d + 1, sizeof(float));
    m->F = er_mallocarray(n * D + 1, sizeof(float));
    m->dF = er_mallocarray(n * D + 1, sizeof(float));
    if (m->H) m->text = er_mallocarray(n * (size_t)m->H + 1, sizeof(float));
    if (!m->p || !m->gr || !m->m1 || !m->m2 || !m->val_drop || !m->keep || !m->perm || !m->seeds ||
        !m->E0 || !m->cur || !m->nxt || !m->F || !m->dF || (m->H && !m->text)) {
        er_cf_model_free(m);
        return EASYREC_ERR_NOMEM;
    }
    if (m->H) {
        memcpy(m->text, tu, (size_t)m->N * m->H * sizeof(float));
        memcpy(m->text + (size_t)m->N * m->H, ti, (size_t)m->M * m->H * sizeof(float));
    }
    /* initialisation, in parameter order: Xavier-uniform over whole matrices */
    uniform_fill(rng, m->p + m->off[ER_CF_P_USER], m->len[ER_CF_P_USER], sqrt(6.0 / (double)(m->N + m->d)));
    uniform_fill(rng, m->p + m->off[ER_CF_P_ITEM], m->len[ER_CF_P_ITEM], sqrt(6.0 / (double)(m->M + m->d)));
    uniform_fill(rng, m->p + m->off[ER_CF_P_GCCFW], m->len[ER_CF_P_GCCFW], sqrt(6.0 / (2.0 * m->d)));
    if (hid) {
        uniform_fill(rng, m->p + m->off[ER_CF_P_W1], m->len[ER_CF_P_W1], sqrt(6.0 / (double)(in + hid)));
        uniform_fill(rng, m->p + m->off[ER_CF_P_B1], m->len[ER_CF_P_B1], 1.0 / sqrt((double)in));
        uniform_fill(rng, m->p + m->off[ER_CF_P_W2], m->len[ER_CF_P_W2], sqrt(6.0 / (double)(hid + o)));
        uniform_fill(rng, m->p + m->off[ER_CF_P_B2], m->len[ER_CF_P_B2], 1.0 / sqrt((double)hid));
    }
    er_cf_mlp *w[2] = {&m->mlp, &m->gmlp};
    float *base[2] = {m->p, m->gr};
    for (int k = 0; k < 2; k++) {
        w[k]->in = in, w[k]->hid = hid, w[k]->out = o;
        w[k]->w1 = base[k] + m->off[ER_CF_P_W1];
        w[k]->b1 = base[k] + m->off[ER_CF_P_B1];
        w[k]->w2 = base[k] + m->off[ER_CF_P_W2];
        w[k]->b2 = base[k] + m->off[ER_CF_P_B2];
    }
    *out = m;
    return EASYREC_OK;
}

void er_cf_model_free(er_cf_model *m) {
    if (!m) return;
    er_cf_graph_free(&m->g);
    free(m->text);
    free(m->p), free(m->gr), free(m->m1), free(m->m2);
    free(m->val_drop), free(m->keep), free(m->perm), free(m->seeds);
    free(m->E0), free(m->cur), free(m->nxt), free(m->F), free(m->dF);
    free(m->ids), free(m->slot);
    buf *b[] = {&m->hpre, &m->hact, &m->P, &m->dP, &m->X, &m->dh, &m->ga, &m->gb, &m->dga, &m->dgb, &m->scratch, &m->wts};
    for (size_t k = 0; k < sizeof b / sizeof b[0]; k++) free(b[k]->p);
    free(m);
}

float *er_cf_params(er_cf_model *m, size_t *n) {
    if (n) *n = m->np;
    m->emb_valid = 0; /* the caller may change them */
    return m->p;
}
float *er_cf_grads(er_cf_model *m) { return m->gr; }
void er_cf_param_span(const er_cf_model *m, int k, size_t *off, size_t *len) {
    *off = m->off[k];
    *len = m->len[k];
}
void er_cf_adam_state(er_cf_model *m, float **mom1, float **mom2, long **t) {
    *mom1 = m->m1;
    *mom2 = m->m2;
    *t = &m->t;
}
int er_cf_out_dim(const er_cf_model *m) { return m->D; }
int32_t er_cf_n_users(const er_cf_model *m) { return m->N; }
int32_t er_cf_n_items(const er_cf_model *m) { return m->M; }
const er_cf_graph *er_cf_model_graph(const er_cf_model *m) { return &m->g; }
const er_cf_config *er_cf_model_config(const er_cf_model *m) { return &m->c; }
int er_cf_text_dim(const er_cf_model *m) { return m->H; }

/* F from E0 through Â with values val. */
static void propagate(er_cf_model *m, const float *val) {
    size_t n = (size_t)m->n, d = (size_t)m->d;
    int D = m->D, th = m->c.threads;
    if (m->c.algo == ER_CF_LIGHTGCN) {
        memcpy(m->F, m->E0, n * d * sizeof(float));
        const float *src = m->E0;
        for (int l = 0; l < m->L; l++) {
            er_cf_spmm(&m->g, val, 0, src, m->d, m->nxt, m->d, NULL, 0, m->d, th);
            for (size_t k = 0; k < n * d; k++) m->F[k] += m->nxt[k];
            float *t = m->cur;
            m->cur = m->nxt;
            m->nxt = t;
            src = m->cur;
        }
    } else {
        for (size_t i = 0; i < n; i++) memcpy(m->F + i * D, m->E0 + i * d, d * sizeof(float));
        for (int l = 0; l < m->L; l++)
            er_cf_spmm(&m->g, val, 0, m->F + (size_t)l * d, D, m->F + (size_t)(l + 1) * d, D, NULL, 0, m->d, th);
    }
}

/* dE⁰ (into m->cur) from dF. */
static void propagate_back(er_cf_model *m, const float *val) {
    size_t n = (size_t)m->n, d = (size_t)m->d;
    int D = m->D, th = m->c.threads;
    if (m->c.algo == ER_CF_LIGHTGCN) {
        memcpy(m->cur, m->dF, n * d * sizeof(float));
        for (int l = 0; l < m->L; l++) {
            er_cf_spmm(&m->g, val, 1, m->cur, m->d, m->nxt, m->d, m->dF, m->d, m->d, th);
            float *t = m->cur;
            m->cur = m->nxt;
            m->nxt = t;
        }
    } else {
        for (size_t i = 0; i < n; i++) memcpy(m->cur + i * d, m->dF + i * D + (size_t)m->L * d, d * sizeof(float));
        for (int l = m->L - 1; l >= 0; l--) {
            er_cf_spmm(&m->g, val, 1, m->cur, m->d, m->nxt, m->d, m->dF + (size_t)l * d, D, m->d, th);
            float *t = m->cur;
            m->cur = m->nxt;
            m->nxt = t;
        }
    }
}

static void load_e0(er_cf_model *m, const int32_t *seeds, int ns) {
    size_t d = (size_t)m->d;
    memcpy(m->E0, m->p + m->off[ER_CF_P_USER], (size_t)m->N * d * sizeof(float));
    memcpy(m->E0 + (size_t)m->N * d, m->p + m->off[ER_CF_P_ITEM], (size_t)m->M * d * sizeof(float));
    for (int s = 0; s < ns; s++) memcpy(m->E0 + (size_t)seeds[s] * d, m->p + m->off[ER_CF_P_MASK], d * sizeof(float));
}

const float *er_cf_embeddings(er_cf_model *m) {
    if (!m->emb_valid) {
        load_e0(m, NULL, 0);
        propagate(m, m->g.val);
        m->emb_valid = 1;
    }
    return m->F;
}

static void gather(const float *src, int w, const int32_t *rows, int n, int32_t add, float *dst) {
    for (int r = 0; r < n; r++) memcpy(dst + (size_t)r * w, src + (size_t)(rows[r] + add) * w, (size_t)w * sizeof(float));
}
static void scatter_add(const float *src, int w, const int32_t *rows, int n, int32_t add, float *dst) {
    for (int r = 0; r < n; r++) {
        float *o = dst + (size_t)(rows[r] + add) * w;
        const float *s = src + (size_t)r * w;
        for (int k = 0; k < w; k++) o[k] += s[k];
    }
}

/* The distinct values of v[0..n) (each + add, in [0, m->n)) in order of first appearance:
 * uniq (nu) and their counts cnt (nu, may be NULL); where[r] (may be NULL) the position of v[r] in uniq.
 * m->slot is all −1 before and after. Returns nu. */
static int distinct(er_cf_model *m, const int32_t *v, int n, int32_t add, int32_t *uniq, float *cnt, int32_t *where) {
    int nu = 0;
    for (int r = 0; r < n; r++) {
        int32_t *s = &m->slot[v[r] + add];
        if (*s < 0) {
            *s = nu;
            uniq[nu] = v[r];
            if (cnt) cnt[nu] = 0.0f;
            nu++;
        }
        if (cnt) cnt[*s] += 1.0f;
        if (where) where[r] = *s;
    }
    for (int u = 0; u < nu; u++) m->slot[uniq[u] + add] = -1;
    return nu;
}

/* RLMRec-Con: kd_weight / B · [nce(F_u, P_u, P_all users) + nce(F_i+, P_i+, P_i+) + nce(F_i−, P_i−, P_i−)]
 * with P = MLP(text). Gradients into dF and the MLP's.
 * A batch names a user or item several times (movies: 4096 interactions hold ~3,300 users,
 * ~2,700 positive and ~3,300 negative items): identical rows with identical terms. Each
 * distinct node goes once, weighted by its count (er_cf_nce's wa / wc), and the MLP runs on
 * the distinct items only: the same sums (to rounding) with a fifth to a half less work. */
static int con_loss(er_cf_model *m, const int32_t *users, const int32_t *pos, const int32_t *neg, int B, double *out) {
    int D = m->D, H = m->H, hid = m->mlp.hid, N = m->N, th = m->c.threads;
    size_t rows = (size_t)N + 2 * (size_t)B; /* MLP rows: all users, then the batch's distinct items */
    size_t nsc = er_cf_nce_scratch(B, N > B ? N : B, D, th);
    if (grow(&m->hpre, rows * hid) || grow(&m->hact, rows * hid) || grow(&m->P, rows * D) || grow(&m->dP, rows * D) ||
        grow(&m->X, 2 * (size_t)B * H) || grow(&m->dh, rows * hid) || grow(&m->ga, 3 * (size_t)B * D) ||
        grow(&m->gb, 3 * (size_t)B * D) || grow(&m->dga, 3 * (size_t)B * D) || grow(&m->dgb, 3 * (size_t)B * D) ||
        grow(&m->scratch, nsc) || grow(&m->wts, 3 * (size_t)B))
        return EASYREC_ERR_NOMEM;
    if (m->ids_cap < 9 * (size_t)B) {
        int32_t *q = er_mallocarray(9 * (size_t)B, sizeof(int32_t));
        if (!q) return EASYREC_ERR_NOMEM;
        free(m->ids);
        m->ids = q;
        m->ids_cap = 9 * (size_t)B;
    }
    if (!m->slot) {
        if (!(m->slot = er_mallocarray((size_t)m->n, sizeof(int32_t)))) return EASYREC_ERR_NOMEM;
        for (int32_t k = 0; k < m->n; k++) m->slot[k] = -1;
    }
    /* ids: ua (B) distinct users; it (2B) distinct items of pos ∪ neg, wi (2B) each pos / neg
     * entry's position in it; pu, qn (B) distinct positions among pos / neg; pit, nit (B) their
     * item ids */
    int32_t *ua = m->ids, *it = ua + B, *wi = it + 2 * (size_t)B, *pu = wi + 2 * (size_t)B, *qn = pu + B;
    int32_t *pit = qn + B, *nit = pit + B;
    float *cu = m->wts.p, *cp = cu + B, *cn = cp + B;
    int nu = distinct(m, users, B, 0, ua, cu, NULL);
    memcpy(wi, pos, (size_t)B * sizeof(int32_t)); /* pos then neg, as one list of item ids */
    memcpy(wi + B, neg, (size_t)B * sizeof(int32_t));
    int ni = distinct(m, wi, 2 * B, N, it, NULL, wi);
    int np_ = distinct(m, wi, B, 0, pu, cp, NULL), nn = distinct(m, wi + B, B, 0, qn, cn, NULL);
    for (int j = 0; j < np_; j++) pit[j] = it[pu[j]];
    for (int j = 0; j < nn; j++) nit[j] = it[qn[j]];

    float *Pu = m->P.p, *Pi = Pu + (size_t)N * D, *dPu = m->dP.p, *dPi = dPu + (size_t)N * D;
    gather(m->text, H, it, ni, N, m->X.p);
    er_cf_mlp_forward(&m->mlp, m->text, N, m->hpre.p, m->hact.p, Pu, th);
    er_cf_mlp_forward(&m->mlp, m->X.p, ni, m->hpre.p + (size_t)N * hid, m->hact.p + (size_t)N * hid, Pi, th);
    memset(dPu, 0, ((size_t)N + ni) * D * sizeof(float));
    float *Fa = m->ga.p, *Fp = Fa + (size_t)B * D, *Fn = Fp + (size_t)B * D;
    float *dFa = m->dga.p, *dFp = dFa + (size_t)B * D, *dFn = dFp + (size_t)B * D;
    float *Pa = m->gb.p, *Pp = Pa + (size_t)B * D, *Pn = Pp + (size_t)B * D;
    float *dPa = m->dgb.p, *dPp = dPa + (size_t)B * D, *dPn = dPp + (size_t)B * D;
    memset(dFa, 0, 3 * (size_t)B * D * sizeof(float));
    memset(dPa, 0, 3 * (size_t)B * D * sizeof(float));
    gather(m->F, D, ua, nu, 0, Fa);
    gather(m->F, D, pit, np_, N, Fp);
    gather(m->F, D, nit, nn, N, Fn);
    gather(Pu, D, ua, nu, 0, Pa);
    gather(Pi, D, pu, np_, 0, Pp);
    gather(Pi, D, qn, nn, 0, Pn);
    double scale = m->c.kd_weight / B, tau = m->c.kd_temp, l = 0;
    l += er_cf_nce(Fa, Pa, nu, cu, Pu, N, NULL, D, tau, scale, dFa, dPa, dPu, m->scratch.p, nsc, th);
    l += er_cf_nce(Fp, Pp, np_, cp, Pp, np_, cp, D, tau, scale, dFp, dPp, dPp, m->scratch.p, nsc, th);
    l += er_cf_nce(Fn, Pn, nn, cn, Pn, nn, cn, D, tau, scale, dFn, dPn, dPn, m->scratch.p, nsc, th);
    scatter_add(dPa, D, ua, nu, 0, dPu);
    scatter_add(dPp, D, pu, np_, 0, dPi);
    scatter_add(dPn, D, qn, nn, 0, dPi);
    scatter_add(dFa, D, ua, nu, 0, m->dF);
    scatter_add(dFp, D, pit, np_, N, m->dF);
    scatter_add(dFn, D, nit, nn, N, m->dF);
    er_cf_mlp_backward(&m->mlp, &m->gmlp, m->text, N, m->hpre.p, m->hact.p, dPu, m->dh.p, NULL, th);
    er_cf_mlp_backward(&m->mlp, &m->gmlp, m->X.p, ni, m->hpre.p + (size_t)N * hid, m->hact.p + (size_t)N * hid,
                       dPi, m->dh.p, NULL, th);
    *out = scale * l;
    return 0;
}

/* RLMRec-Gen: recon_weight · recon(MLP(F_seeds), text_seeds). Gradients into dF and the MLP's. */
static int gen_loss(er_cf_model *m, const int32_t *seeds, int ns, double *out) {
    int D = m->D, H = m->H, hid = m->mlp.hid, th = m->c.threads;
    if (ns < 1) return er_error(EASYREC_ERR_ARG, "cf gen: no masked node");
    size_t r = (size_t)ns;
    if (grow(&m->ga, r * D) || grow(&m->dga, r * D) || grow(&m->hpre, r * hid) || grow(&m->hact, r * hid) ||
        grow(&m->dh, r * hid) || grow(&m->P, r * H) || grow(&m->dP, r * H) || grow(&m->X, r * H) ||
        grow(&m->scratch, er_cf_recon_scratch(ns, H)))
        return EASYREC_ERR_NOMEM;
    gather(m->F, D, seeds, ns, 0, m->ga.p);
    gather(m->text, H, seeds, ns, 0, m->X.p);
    er_cf_mlp_forward(&m->mlp, m->ga.p, ns, m->hpre.p, m->hact.p, m->P.p, th);
    memset(m->dP.p, 0, r * H * sizeof(float));
    double l = er_cf_recon(m->P.p, m->X.p, ns, H, m->c.kd_temp, m->c.kd_weight, m->dP.p, m->scratch.p, th);
    er_cf_mlp_backward(&m->mlp, &m->gmlp, m->ga.p, ns, m->hpre.p, m->hact.p, m->dP.p, m->dh.p, m->dga.p, th);
    scatter_add(m->dga.p, D, seeds, ns, 0, m->dF);
    *out = m->c.kd_weight * l;
    return 0;
}

int er_cf_loss_grad(er_cf_model *m, const int32_t *users, const int32_t *pos, const int32_t *neg, int B,
                    const er_cf_draw *dr, er_cf_losses *out) {
    ER_ASSERT(B >= 1);
    for (int b = 0; b < B; b++)
        ER_ASSERT(users[b] >= 0 && users[b] < m->N && pos[b] >= 0 && pos[b] < m->M && neg[b] >= 0 && neg[b] < m->M);
    int gen = m->c.align == ER_CF_ALIGN_GEN;
    const int32_t *seeds = gen && dr ? dr->seeds : NULL;
    int ns = gen && dr ? dr->ns : 0;
    if (gen && (!seeds || ns < 1)) return er_error(EASYREC_ERR_ARG, "cf gen: the step needs masked nodes");
    m->emb_valid = 0;
    memset(m->gr, 0, m->np * sizeof(float));
    load_e0(m, seeds, ns);
    const float *val = m->g.val;
    if (m->c.algo == ER_CF_LIGHTGCN && dr && dr->keep) {
        for (int64_t e = 0; e < m->g.nnz; e++) m->val_drop[e] = dr->keep[e] ? m->g.val[e] : 0.0f;
        val = m->val_drop;
    }
    propagate(m, val);
    size_t n = (size_t)m->n, D = (size_t)m->D, d = (size_t)m->d;
    memset(m->dF, 0, n * D * sizeof(float));
    /* BPR on node ids: items shifted by N */
    if (grow(&m->scratch, 3 * (size_t)B)) return EASYREC_ERR_NOMEM;
    int32_t *ids = (int32_t *)m->scratch.p; /* (3B) node ids */
    for (int b = 0; b < B; b++) ids[b] = users[b], ids[B + b] = m->N + pos[b], ids[2 * B + b] = m->N + neg[b];
    out->bpr = er_cf_bpr(m->F, m->D, ids, ids + B, ids + 2 * B, B, 1.0, m->dF);
    out->align = 0;
    int rc = 0;
    if (m->c.align == ER_CF_ALIGN_CON) rc = con_loss(m, users, pos, neg, B, &out->align);
    else if (gen) rc = gen_loss(m, seeds, ns, &out->align);
    if (rc) return rc;
    propagate_back(m, val);
    /* dE⁰ -> tables; masked rows -> the mask token */
    float *gu = m->gr + m->off[ER_CF_P_USER], *gi = m->gr + m->off[ER_CF_P_ITEM];
    memcpy(gu, m->cur, (size_t)m->N * d * sizeof(float));
    memcpy(gi, m->cur + (size_t)m->N * d, (size_t)m->M * d * sizeof(float));
    if (gen) {
        float *gm = m->gr + m->off[ER_CF_P_MASK];
        for (int s = 0; s < ns; s++) {
            float *row = m->gr + (size_t)seeds[s] * d; /* users then items: same layout as E⁰ */
            for (size_t k = 0; k < d; k++) gm[k] += row[k], row[k] = 0.0f;
        }
    }
    out->reg = er_cf_l2(m->p, m->np, m->c.reg, m->gr);
    out->total = out->bpr + out->reg + out->align;
    return EASYREC_OK;
}

int er_cf_step(er_cf_model *m, const int32_t *users, const int32_t *pos, const int32_t *neg, int B,
               const er_cf_draw *dr, er_cf_losses *out) {
    int rc = er_cf_loss_grad(m, users, pos, neg, B, dr, out);
    if (rc) return rc;
    er_adamw h = {.lr = (float)m->c.lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
    m->t++;
    er_adamw_step(&h, m->p, m->gr, m->m1, m->m2, m->np, m->t, NULL, m->c.threads);
    m->emb_valid = 0;
    return EASYREC_OK;
}

void er_cf_draw_random(er_cf_model *m, er_rng *rng, er_cf_draw *dr) {
    memset(dr, 0, sizeof(*dr));
    if (m->c.algo == ER_CF_LIGHTGCN && m->c.keep_rate < 1.0) {
        for (int64_t e = 0; e < m->g.nnz; e++) m->keep[e] = er_rng_uniform(rng) < m->c.keep_rate;
        dr->keep = m->keep;
    }
    if (m->c.align == ER_CF_ALIGN_GEN) {
        /* max(int(n · ratio), 1) distinct nodes: a partial Fisher-Yates shuffle */
        int ns = (int)((double)m->n * m->c.mask_ratio);
        if (ns < 1) ns = 1;
        if (ns > m->n) ns = m->n;
        for (int32_t i = 0; i < m->n; i++) m->perm[i] = i;
        for (int s = 0; s < ns; s++) {
            int32_t j = s + (int32_t)er_rng_below(rng, (uint64_t)(m->n - s));
            int32_t t = m->perm[s];
            m->perm[s] = m->perm[j];
            m->perm[j] = t;
            m->seeds[s] = m->perm[s];
        }
        dr->seeds = m->seeds;
        dr->ns = ns;
    }
}

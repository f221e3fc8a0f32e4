/* loss.c — the CF losses of ../shared/docs/easyrec-spec.md §6.2 with their gradients:
 * BPR, the RLMRec-Con alignment InfoNCE (cal_infonce_loss), the RLMRec-Gen reconstruction
 * loss (ssl_con_loss) and L2 over all parameters (reg_params). Similarity matrices are built
 * in blocks of rows (never (rows × candidates) at once for large inputs); each block's
 * gradient is accumulated in block order, so results do not depend on the thread count. */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cf/cf.h"
#include "core/err.h"
#include "kernels/kernels.h"
#include "kernels/mvec.h" /* vector expf for the softmax rows (libmvec) */

#define RB 32   /* reconstruction loss: rows per similarity block */
#define CH 1024 /* rows per parallel chunk of a product */
#define NB 96   /* InfoNCE pass 1: anchors per task */
#define WC 512  /* InfoNCE pass 1: candidates per chunk ((NB × WC) floats: 192 KiB, in L2) */
#define TR 256  /* InfoNCE pass 2: anchors per tile (a multiple of the panel width) */
#define TC 256  /* InfoNCE pass 2: candidates per task */
_Static_assert(TC % ER_GEMM_PANEL == 0 && WC % ER_GEMM_PANEL == 0 && TR % ER_GEMM_PANEL == 0, "chunks start on whole panels of the packed Ĉ");

/* The softmax rows' exponentials, the bulk of the InfoNCE's time after its products
 * (ER_MVEC_CLONES: 16-lane expf on AVX-512 CPUs).
 * s[c] = exp(s[c] · it − mx); returns Σ s[c] (in double) */
ER_MVEC_CLONES static double exp_rows_sum(float *s, int n, float it, float mx) {
    double z = 0;
#pragma omp simd reduction(+ : z)
    for (int c = 0; c < n; c++) {
        float e = expf(s[c] * it - mx);
        s[c] = e;
        z += e;
    }
    return z;
}

/* s[c] = exp(s[c] · it − mx) · wc[c]; returns Σ s[c] (in double): the rows of a candidate
 * set given once per distinct candidate with its multiplicity wc */
ER_MVEC_CLONES static double exp_rows_wsum(float *s, int n, float it, float mx, const float *wc) {
    double z = 0;
#pragma omp simd reduction(+ : z)
    for (int c = 0; c < n; c++) {
        float e = expf(s[c] * it - mx) * wc[c];
        s[c] = e;
        z += e;
    }
    return z;
}

/* max of s[0..n) (a function of its own: inlined in the InfoNCE's block loop the accumulator
 * went to the stack, 4 lanes at a time) */
ER_MVEC_CLONES static float row_max(const float *s, int n) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int c = 0; c < n; c++) m = s[c] > m ? s[c] : m;
    return m;
}

/* t[r] = exp(t[r] · it − mx[r]) · w[r]: a row of a transposed tile, one anchor per column */
ER_MVEC_CLONES static void exp_cols_scale(float *t, int n, float it, const float *mx, const float *w) {
#pragma omp simd
    for (int r = 0; r < n; r++) t[r] = expf(t[r] * it - mx[r]) * w[r];
}

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

double er_cf_bpr(const float *F, int D, const int32_t *anc, const int32_t *pos, const int32_t *neg, int B,
                 double scale, float *dF) {
    double loss = 0;
    for (int b = 0; b < B; b++) {
        const float *u = F + (size_t)anc[b] * D, *i = F + (size_t)pos[b] * D, *j = F + (size_t)neg[b] * D;
        double sp = 0, sn = 0;
        for (int k = 0; k < D; k++) {
            sp += (double)u[k] * i[k];
            sn += (double)u[k] * j[k];
        }
        double x = sn - sp;
        loss += softplus(x);
        if (!dF) continue;
        /* d softplus(x)/dx = sigmoid(x); x = u·j − u·i */
        float g = (float)(scale / (1.0 + exp(-x)) / B);
        float *du = dF + (size_t)anc[b] * D, *di = dF + (size_t)pos[b] * D, *dj = dF + (size_t)neg[b] * D;
        for (int k = 0; k < D; k++) {
            du[k] += g * (j[k] - i[k]);
            di[k] -= g * u[k];
            dj[k] += g * u[k];
        }
    }
    return loss / B;
}

double er_cf_l2(const float *p, size_t n, double reg, float *g) {
    double s = 0;
    for (size_t k = 0; k < n; k++) s += (double)p[k] * p[k];
    if (g) {
        float c = (float)(2.0 * reg);
        for (size_t k = 0; k < n; k++) g[k] += c * p[k];
    }
    return reg * s;
}

/* out (n, D) = rows of X scaled to x / sqrt(eps + |x|²) (sqrt_eps = 0: x / max(|x|, 1e-12));
 * nrm (n) receives the divisor. */
static void normalise_rows(const float *X, int n, int D, int torch_normalize, float *out, float *nrm, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= 1024)
    for (int r = 0; r < n; r++) {
        const float *x = X + (size_t)r * D;
        double s = 0;
        for (int k = 0; k < D; k++) s += (double)x[k] * x[k];
        double d = torch_normalize ? fmax(sqrt(s), 1e-12) : sqrt(1e-8 + s);
        nrm[r] = (float)d;
        float inv = (float)(1.0 / d);
        for (int k = 0; k < D; k++) out[(size_t)r * D + k] = x[k] * inv;
    }
}

/* dX[r] += (dxh − x̂ (x̂·dxh)) / nrm[r]: the gradient through x̂ = x / nrm(x) (for both norms
 * while |x| > 1e-12, where max(|x|, 1e-12) = |x| has the same derivative). */
static void unnormalise_grad(const float *xh, const float *nrm, const float *dxh, int n, int D, float *dX, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= 1024)
    for (int r = 0; r < n; r++) {
        const float *a = xh + (size_t)r * D, *g = dxh + (size_t)r * D;
        double dot = 0;
        for (int k = 0; k < D; k++) dot += (double)a[k] * g[k];
        float inv = 1.0f / nrm[r], fd = (float)dot;
        float *o = dX + (size_t)r * D;
        for (int k = 0; k < D; k++) o[k] += (g[k] - a[k] * fd) * inv;
    }
}

typedef struct {
    int ta, n, N, K, lda, ldb, accumulate;
    const float *A, *B;
    float *C;
} chunk_job;

static void chunk_task(void *p, int c) {
    const chunk_job *j = p;
    int r0 = c * CH, m = j->n - r0 < CH ? j->n - r0 : CH;
    const float *a = j->ta ? j->A + r0 : j->A + (size_t)r0 * j->lda;
    er_gemm(j->ta, 0, m, j->N, j->K, a, j->lda, j->B, j->ldb, NULL, j->C + (size_t)r0 * j->N, j->N, j->accumulate);
}

/* C (n, N) [+]= op(A) · B in fixed row chunks of the output (ta: A stored (K, n)). */
static void chunked_gemm(int ta, int n, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                         int accumulate, int threads) {
    chunk_job j = {ta, n, N, K, lda, ldb, accumulate, A, B, C};
    er_gemm_tasks((n + CH - 1) / CH, threads, chunk_task, &j);
}

static size_t nce_tile(void) { return (size_t)NB * WC > (size_t)TR * TC ? (size_t)NB * WC : (size_t)TR * TC; }

/* Pass 1's exponentials are held for pass 2 when they take at most HOLD_BYTES (movies' user
 * InfoNCE: 3,330 × 16,994 floats, 226 MB), instead of recomputed: writing and reading them back
 * costs less than the product and exp they replace. Larger inputs recompute. */
#define HOLD_BYTES ((size_t)640 << 20)
static int nce_holds(int na, int nc) { return (size_t)na * nc * sizeof(float) <= HOLD_BYTES; }
static size_t nce_hold_floats(int na, int nc) {
    return nce_holds(na, nc) ? (size_t)na * nc + (size_t)na * ((nc + WC - 1) / WC) : 0;
}

size_t er_cf_nce_scratch(int na, int nc, int D, int threads) {
    return er_cf_nce_scratch_min(na, nc, D, threads) + nce_hold_floats(na, nc);
}

size_t er_cf_nce_scratch_min(int na, int nc, int D, int threads) {
    if (threads < 1) threads = 1;
    size_t tile = nce_tile();
    return (size_t)3 * na * D + (size_t)2 * nc * D + (size_t)5 * na + nc + (size_t)threads * tile +
           er_gemm_packed_floats(nc, D) + er_gemm_packed_floats(D, nc) + /* packed Ĉ, twice */
           er_gemm_packed_floats(na, D) + er_gemm_packed_floats(D, na) + /* and Â */
           (size_t)threads * NB * D;                                       /* scaled Â blocks */
}

/* X (n, D) packed as the B of products with Xᵀ (rows) and with X (k × n), concurrently */
static void pack_both(const float *X, int n, int D, float *rows, float *kn, int threads) {
#pragma omp parallel sections num_threads(threads < 2 ? 1 : 2)
    {
#pragma omp section
        er_gemm_pack_rows(X, NULL, n, D, D, rows);
#pragma omp section
        er_gemm_pack_kn(X, n, D, D, kn);
    }
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* What the InfoNCE's tasks share: the normalised rows, the packed operands (NULL where the
 * own kernel does not run), the per-row results of pass 1, and the work space. */
typedef struct {
    int na, nc, D, nq;
    float it, ginv;
    double tau;
    const float *ah, *bh, *ch, *wa, *wc;
    const float *cpt, *cpn, *apt, *apn; /* Ĉ and Â packed as rows and as (k × n) */
    size_t tile;
    float *dah, *dch, *rmx, *rw, *rloss, *tiles, *abuf, *E, *mq;
} nce_job;

/* Pass 1, block b of NB anchors: through Ĉ in chunks of WC candidates (the (NB × WC) tile in
 * L2, or held in E), with a running row max (the online softmax of flash attention: what the
 * earlier chunks summed is rescaled when the max grows), z = Σ exp(S/τ − max) and
 * U = Σ exp(S/τ − max) Ĉ_chunk; then the rows' loss and dÂ_blk = U / z. */
static void nce_pass1(void *p, int b) {
    const nce_job *j = p;
    int D = j->D, nc = j->nc, r0 = b * NB, rb = j->na - r0 < NB ? j->na - r0 : NB;
    size_t pt = (size_t)ER_GEMM_PANEL * D, pn = (size_t)ER_GEMM_PANEL * nc; /* panel strides */
    float *St = j->tiles + (size_t)thread_id() * j->tile, *U = j->dah + (size_t)r0 * D, mx[NB], it = j->it;
    const float *ab = j->ah + (size_t)r0 * D;
    double z[NB];
    for (int r = 0; r < rb; r++) z[r] = 0, mx[r] = -INFINITY;
    memset(U, 0, sizeof(float) * (size_t)rb * D);
    for (int c0 = 0; c0 < nc; c0 += WC) {
        int w = nc - c0 < WC ? nc - c0 : WC, ls = j->E ? w : WC;
        float *S = j->E ? j->E + (size_t)r0 * nc + (size_t)c0 * rb : St; /* the tile, held or not */
        if (j->cpt) /* S (rb, w) = Â_blk Ĉ_chunkᵀ */
            er_gemm_packed(rb, ab, D, j->cpt + (size_t)c0 * D, pt, w, D, NULL, S, ls, 0);
        else
            er_gemm(0, 1, rb, w, D, ab, D, j->ch + (size_t)c0 * D, D, NULL, S, ls, 0);
        for (int r = 0; r < rb; r++) {
            float *s = S + (size_t)r * ls, cm = row_max(s, w) * it; /* it > 0: the max of s · it */
            if (cm > mx[r]) { /* a new row max: rescale what the earlier chunks summed */
                if (z[r] > 0) {
                    float f = expf(mx[r] - cm);
                    z[r] *= f;
                    for (int k = 0; k < D; k++) U[(size_t)r * D + k] *= f;
                }
                mx[r] = cm;
            }
            z[r] += j->wc ? exp_rows_wsum(s, w, it, mx[r], j->wc + c0) : exp_rows_sum(s, w, it, mx[r]);
            if (j->mq) j->mq[(size_t)(r0 + r) * j->nq + c0 / WC] = mx[r];
        }
        if (j->cpn) /* U (rb, D) += E (rb, w) Ĉ_chunk */
            er_gemm_packed(rb, S, ls, j->cpn + (size_t)ER_GEMM_PANEL * c0, pn, D, w, NULL, U, D, 1);
        else
            er_gemm(0, 0, rb, D, w, S, ls, j->ch + (size_t)c0 * D, D, NULL, U, D, 1);
    }
    for (int r = 0; r < rb; r++) {
        const float *a = ab + (size_t)r * D, *bb = j->bh + (size_t)(r0 + r) * D;
        double pos = 0;
        for (int k = 0; k < D; k++) pos += (double)a[k] * bb[k];
        /* softmax row r: exp(s/τ − mx) / z; its gradient weight (scale/τ) w_r / z */
        float g = (float)(j->ginv * (j->wa ? j->wa[r0 + r] : 1.0f) / z[r]);
        j->rmx[r0 + r] = mx[r];
        j->rw[r0 + r] = g;
        j->rloss[r0 + r] = (float)(-pos / j->tau + mx[r] + log(z[r]));
        for (int k = 0; k < D; k++) U[(size_t)r * D + k] *= g; /* dÂ_blk = (scale/τ) w_r U / z */
    }
}

/* Pass 2 from the held exponentials, chunk q of pass 1: dĈ_chunk (w, D) = Σ_blocks
 * E_blk,chunkᵀ (w, rb) · (f Â_blk) (rb, D), f_r = exp(mq_r,q − mx_r) · rw_r (the chunk's
 * exponentials were taken with an earlier row max; they hold the multiplicities wc already). */
static void nce_pass2_held(void *p, int q) {
    const nce_job *j = p;
    int D = j->D, nc = j->nc, c0 = q * WC, w = nc - c0 < WC ? nc - c0 : WC;
    float *out = j->dch + (size_t)c0 * D, *as = j->abuf + (size_t)thread_id() * NB * D;
    for (size_t k = 0; k < (size_t)w * D; k++) out[k] = 0.0f;
    for (int r0 = 0; r0 < j->na; r0 += NB) {
        int rb = j->na - r0 < NB ? j->na - r0 : NB;
        for (int r = 0; r < rb; r++) {
            float f = expf(j->mq[(size_t)(r0 + r) * j->nq + q] - j->rmx[r0 + r]) * j->rw[r0 + r];
            const float *a = j->ah + (size_t)(r0 + r) * D;
            for (int k = 0; k < D; k++) as[(size_t)r * D + k] = a[k] * f;
        }
        er_gemm(1, 0, w, D, rb, j->E + (size_t)r0 * nc + (size_t)c0 * rb, w, as, D, NULL, out, D, 1);
    }
}

/* Pass 2 recomputed, chunk q of TC candidates: transposed tiles Tᵀ = Ĉ_chunk Â_tileᵀ of TR
 * anchors, so that both products read Â from one packing per call (as Ĉ in pass 1). */
static void nce_pass2_tiles(void *p, int q) {
    const nce_job *j = p;
    int D = j->D, na = j->na, c0 = q * TC, cc = j->nc - c0 < TC ? j->nc - c0 : TC;
    size_t pt = (size_t)ER_GEMM_PANEL * D, pa = (size_t)ER_GEMM_PANEL * na;
    float *T = j->tiles + (size_t)thread_id() * j->tile, *out = j->dch + (size_t)c0 * D;
    const float *cq = j->ch + (size_t)c0 * D;
    for (int k = 0; k < cc * D; k++) out[k] = 0.0f;
    for (int r0 = 0; r0 < na; r0 += TR) {
        int rb = na - r0 < TR ? na - r0 : TR;
        if (j->apt) /* Tᵀ (cc, rb) = Ĉ_chunk Â_tileᵀ (r0 is a multiple of the panel width) */
            er_gemm_packed(cc, cq, D, j->apt + (size_t)r0 * D, pt, rb, D, NULL, T, TR, 0);
        else
            er_gemm(0, 1, cc, rb, D, cq, D, j->ah + (size_t)r0 * D, D, NULL, T, TR, 0);
        for (int c = 0; c < cc; c++) exp_cols_scale(T + (size_t)c * TR, rb, j->it, j->rmx + r0, j->rw + r0);
        /* dĈ_chunk (cc, D) += Tᵀ (cc, rb) · Â_tile (rb, D) */
        if (j->apn)
            er_gemm_packed(cc, T, TR, j->apn + (size_t)ER_GEMM_PANEL * r0, pa, D, rb, NULL, out, D, 1);
        else
            er_gemm(0, 0, cc, D, rb, T, TR, j->ah + (size_t)r0 * D, D, NULL, out, D, 1);
    }
    if (j->wc) /* every copy of candidate c has the same gradient */
        for (int c = 0; c < cc; c++)
            for (int k = 0; k < D; k++) out[(size_t)c * D + k] *= j->wc[c0 + c];
}

/* Two passes, each a set of independent tasks (er_gemm_tasks: the bits do not depend on the
 * thread count, and no thread waits at a barrier per block): nce_pass1 over blocks of anchors,
 * then dĈ over chunks of candidates, from pass 1's exponentials where the scratch holds them
 * (nce_holds), else recomputed (nce_pass2_tiles). */
double er_cf_nce(const float *A, const float *Bm, int na, const float *wa, const float *C, int nc, const float *wc,
                 int D, double tau, double scale, float *dA, float *dB, float *dC, float *scratch, size_t nscratch,
                 int threads) {
    if (threads < 1) threads = 1;
    ER_ASSERT(nscratch >= er_cf_nce_scratch_min(na, nc, D, threads));
    float *ah = scratch, *bh = ah + (size_t)na * D, *dah = bh + (size_t)na * D, *ch = dah + (size_t)na * D;
    float *dch = ch + (size_t)nc * D, *na_ = dch + (size_t)nc * D, *nb_ = na_ + na, *nc_ = nb_ + na;
    float *rmx = nc_ + nc, *rw = rmx + na, *rloss = rw + na, *tiles = rloss + na;
    size_t tile = nce_tile();
    normalise_rows(A, na, D, 0, ah, na_, threads);
    normalise_rows(Bm, na, D, 0, bh, nb_, threads);
    normalise_rows(C, nc, D, 0, ch, nc_, threads);
    /* then: packed Ĉ (twice) and Â (twice), abuf (a scaled Â block per thread), and where held,
     * E (block b's chunk q, (rb × w) row-major, at E + r0 · nc + c0 · rb) and mq (na, nq): the
     * row max each chunk's exponentials were taken with */
    float *pk = tiles + (size_t)threads * tile;
    float *abuf = pk + er_gemm_packed_floats(nc, D) + er_gemm_packed_floats(D, nc) + er_gemm_packed_floats(na, D) +
                  er_gemm_packed_floats(D, na);
    int nq = (nc + WC - 1) / WC, hold = dC && nscratch >= er_cf_nce_scratch(na, nc, D, threads) && nce_holds(na, nc);
    float *held = abuf + (size_t)threads * NB * D;
    nce_job j = {.na = na, .nc = nc, .D = D, .nq = nq, .it = (float)(1.0 / tau), .ginv = (float)(scale / tau),
                 .tau = tau, .ah = ah, .bh = bh, .ch = ch, .wa = wa, .wc = wc, .tile = tile, .dah = dah, .dch = dch,
                 .rmx = rmx, .rw = rw, .rloss = rloss, .tiles = tiles, .abuf = abuf, .E = hold ? held : NULL,
                 .mq = hold ? held + (size_t)na * nc : NULL};
    float ginv = j.ginv;
    /* every product reads Ĉ: packed once per call, and each product takes its chunk's panels
     * where they lie (the same bits as er_gemm) */
    if (er_gemm_packs()) {
        float *cpt = pk, *cpn = cpt + er_gemm_packed_floats(nc, D);
        pack_both(ch, nc, D, cpt, cpn, threads);
        j.cpt = cpt, j.cpn = cpn;
    }
    er_gemm_tasks((na + NB - 1) / NB, threads, nce_pass1, &j);
    if (dC && hold) {
        er_gemm_tasks(nq, threads, nce_pass2_held, &j);
    } else if (dC) {
        if (j.cpt) {
            float *apt = pk + er_gemm_packed_floats(nc, D) + er_gemm_packed_floats(D, nc);
            float *apn = apt + er_gemm_packed_floats(na, D);
            pack_both(ah, na, D, apt, apn, threads);
            j.apt = apt, j.apn = apn;
        }
        er_gemm_tasks((nc + TC - 1) / TC, threads, nce_pass2_tiles, &j);
    }
    double loss = 0;
    for (int r = 0; r < na; r++) loss += (wa ? wa[r] : 1.0f) * rloss[r];
    if (dA) {
        for (int r = 0; r < na; r++) {
            float g = ginv * (wa ? wa[r] : 1.0f);
            for (int k = 0; k < D; k++) dah[(size_t)r * D + k] -= g * bh[(size_t)r * D + k];
        }
        unnormalise_grad(ah, na_, dah, na, D, dA, threads);
    }
    if (dB) {
        /* dB̂ = −(scale/τ) w_r Â (reuse dah) */
        for (int r = 0; r < na; r++) {
            float g = -ginv * (wa ? wa[r] : 1.0f);
            for (int k = 0; k < D; k++) dah[(size_t)r * D + k] = g * ah[(size_t)r * D + k];
        }
        unnormalise_grad(bh, nb_, dah, na, D, dB, threads);
    }
    if (dC) unnormalise_grad(ch, nc_, dch, nc, D, dC, threads);
    return loss;
}

size_t er_cf_recon_scratch(int m, int H) { return (size_t)2 * m * H + (size_t)2 * m + (size_t)RB * m + (size_t)RB * H; }

double er_cf_recon(const float *X, const float *Y, int m, int H, double tau, double scale, float *dX,
                   float *scratch, int threads) {
    if (threads < 1) threads = 1;
    float *xh = scratch, *yh = xh + (size_t)m * H, *nx = yh + (size_t)m * H, *ny = nx + m, *S = ny + m;
    float *dxh = S + (size_t)RB * m;
    normalise_rows(X, m, H, 1, xh, nx, threads);
    normalise_rows(Y, m, H, 1, yh, ny, threads);
    double loss = 0;
    for (int r0 = 0; r0 < m; r0 += RB) {
        int rb = m - r0 < RB ? m - r0 : RB;
        er_gemm_mt(0, 1, rb, m, H, xh + (size_t)r0 * H, H, yh, H, NULL, S, m, 0, threads);
        double bl = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : bl) schedule(static)
        for (int r = 0; r < rb; r++) {
            float *s = S + (size_t)r * m, it = (float)(1.0 / tau), mx = -INFINITY;
            int diag = r0 + r;
#pragma omp simd reduction(max : mx)
            for (int c = 0; c < m; c++) mx = s[c] * it > mx ? s[c] * it : mx;
            /* e_rc = exp(s_rc/τ) = exp(mx) e'_rc: den = exp(mx) (Σ e' + 1e-8 exp(−mx)) */
            double den = exp_rows_sum(s, m, it, mx) + 1e-8 * exp(-(double)mx);
            double q = s[diag] / den;
            bl += -log(q + 1e-8);
            /* ds_rc = w (δ_rc − e_rc / den) / τ,  w = −scale q / (m (q + 1e-8)) */
            double w = -scale * q / ((double)m * (q + 1e-8)) / tau;
            float wf = (float)w, pf = (float)(w / den);
#pragma omp simd
            for (int c = 0; c < m; c++) s[c] = -pf * s[c];
            s[diag] += wf;
        }
        loss += bl;
        if (!dX) continue;
        /* dX̂_blk (rb, H) = dS · Ŷ */
        chunked_gemm(0, rb, H, m, S, m, yh, H, dxh, 0, threads);
        unnormalise_grad(xh + (size_t)r0 * H, nx + r0, dxh, rb, H, dX + (size_t)r0 * H, threads);
    }
    return loss / m;
}

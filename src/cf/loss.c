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
#include "kernels/kernels.h"
#include "kernels/mvec.h" /* vector expf for the softmax rows (libmvec) */

#define RB 32   /* rows per similarity block: (RB × candidates) stays in L2 */
#define CH 1024 /* rows per parallel chunk of a product */
#define TR 256  /* InfoNCE pass 2: anchors per tile */
#define TC 256  /* InfoNCE pass 2: candidates per task */
_Static_assert(TC % ER_GEMM_PANEL == 0, "pass 2 reads whole panels of the packed Ĉ");

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

/* t[c] = exp(t[c] · it − mx) · w */
ER_MVEC_CLONES static void exp_rows_scale(float *t, int n, float it, float mx, float w) {
#pragma omp simd
    for (int c = 0; c < n; c++) t[c] = expf(t[c] * it - mx) * w;
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
static void normalise_rows(const float *X, int n, int D, int torch_normalize, float *out, float *nrm) {
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
static void unnormalise_grad(const float *xh, const float *nrm, const float *dxh, int n, int D, float *dX) {
    for (int r = 0; r < n; r++) {
        const float *a = xh + (size_t)r * D, *g = dxh + (size_t)r * D;
        double dot = 0;
        for (int k = 0; k < D; k++) dot += (double)a[k] * g[k];
        float inv = 1.0f / nrm[r], fd = (float)dot;
        float *o = dX + (size_t)r * D;
        for (int k = 0; k < D; k++) o[k] += (g[k] - a[k] * fd) * inv;
    }
}

/* C (n, N) [+]= op(A) · B in fixed row chunks of the output (ta: A stored (K, n)). */
static void chunked_gemm(int ta, int n, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                         int accumulate, int threads) {
    int chunks = (n + CH - 1) / CH;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int c = 0; c < chunks; c++) {
        int r0 = c * CH, m = n - r0 < CH ? n - r0 : CH;
        const float *a = ta ? A + r0 : A + (size_t)r0 * lda;
        er_gemm(ta, 0, m, N, K, a, lda, B, ldb, NULL, C + (size_t)r0 * N, N, accumulate);
    }
}

size_t er_cf_nce_scratch(int na, int nc, int D, int threads) {
    if (threads < 1) threads = 1;
    size_t tile = (size_t)RB * nc > (size_t)TR * TC ? (size_t)RB * nc : (size_t)TR * TC;
    return (size_t)3 * na * D + (size_t)2 * nc * D + (size_t)5 * na + nc + (size_t)threads * tile +
           er_gemm_packed_floats(nc, D) + er_gemm_packed_floats(D, nc); /* packed Ĉ, twice */
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Two passes, each one parallel region over independent tasks (so the bits do not depend on
 * the thread count, and no thread waits at a barrier per block):
 *   1. blocks of RB anchors: S = Â_blk Ĉᵀ, row max / sum / loss, dÂ_blk = softmax(S/τ) Ĉ
 *   2. chunks of TC candidates: S is recomputed in tiles of TR anchors and
 *      dĈ_chunk += softmax(S/τ)ᵀ Â (rows' max and sum from pass 1). */
double er_cf_nce(const float *A, const float *Bm, int na, const float *C, int nc, int D, double tau, double scale,
                 float *dA, float *dB, float *dC, float *scratch, int threads) {
    if (threads < 1) threads = 1;
    float *ah = scratch, *bh = ah + (size_t)na * D, *dah = bh + (size_t)na * D, *ch = dah + (size_t)na * D;
    float *dch = ch + (size_t)nc * D, *na_ = dch + (size_t)nc * D, *nb_ = na_ + na, *nc_ = nb_ + na;
    float *rmx = nc_ + nc, *rz = rmx + na, *rloss = rz + na, *tiles = rloss + na;
    size_t tile = (size_t)RB * nc > (size_t)TR * TC ? (size_t)RB * nc : (size_t)TR * TC;
    normalise_rows(A, na, D, 0, ah, na_);
    normalise_rows(Bm, na, D, 0, bh, nb_);
    normalise_rows(C, nc, D, 0, ch, nc_);
    /* pass 1 multiplies every anchor block by all of Ĉ, twice, and pass 2 every tile by a chunk
     * of it: pack Ĉ once per call instead of once per block, tile and product (the same bits:
     * er_gemm_packed_nt) */
    float *cpt = NULL, *cpn = NULL;
    if (er_gemm_packs()) {
        cpt = tiles + (size_t)threads * tile;
        cpn = cpt + er_gemm_packed_floats(nc, D);
        er_gemm_pack_rows(ch, NULL, nc, D, D, cpt); /* Ĉ as the B of Â Ĉᵀ */
        er_gemm_pack_kn(ch, nc, D, D, cpn);         /* Ĉ as the B of P Ĉ */
    }
    float it = (float)(1.0 / tau), ginv = (float)(scale / tau);
    int nblk = (na + RB - 1) / RB, nchk = (nc + TC - 1) / TC;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int b = 0; b < nblk; b++) {
        int r0 = b * RB, rb = na - r0 < RB ? na - r0 : RB;
        float *S = tiles + (size_t)thread_id() * tile;
        if (cpt)
            er_gemm_packed_nt(rb, ah + (size_t)r0 * D, D, cpt, nc, D, S, nc);
        else
            er_gemm(0, 1, rb, nc, D, ah + (size_t)r0 * D, D, ch, D, NULL, S, nc, 0); /* S (rb, nc) = Â_blk Ĉᵀ */
        for (int r = 0; r < rb; r++) {
            float *s = S + (size_t)r * nc, mx = -INFINITY;
#pragma omp simd reduction(max : mx)
            for (int c = 0; c < nc; c++) mx = s[c] * it > mx ? s[c] * it : mx;
            double z = exp_rows_sum(s, nc, it, mx), pos = 0;
            const float *a = ah + (size_t)(r0 + r) * D, *bb = bh + (size_t)(r0 + r) * D;
            for (int k = 0; k < D; k++) pos += (double)a[k] * bb[k];
            rmx[r0 + r] = mx;
            rz[r0 + r] = (float)z;
            rloss[r0 + r] = (float)(-pos / tau + mx + log(z));
            float w = (float)(ginv / z);
#pragma omp simd
            for (int c = 0; c < nc; c++) s[c] *= w;
        }
        if (cpn)
            er_gemm_packed_nt(rb, S, nc, cpn, D, nc, dah + (size_t)r0 * D, D);
        else
            er_gemm(0, 0, rb, D, nc, S, nc, ch, D, NULL, dah + (size_t)r0 * D, D, 0); /* dÂ_blk = P Ĉ */
    }
    if (dC) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (int q = 0; q < nchk; q++) {
            int c0 = q * TC, cc = nc - c0 < TC ? nc - c0 : TC;
            float *T = tiles + (size_t)thread_id() * tile, *out = dch + (size_t)c0 * D;
            for (int k = 0; k < cc * D; k++) out[k] = 0.0f;
            for (int r0 = 0; r0 < na; r0 += TR) {
                int rb = na - r0 < TR ? na - r0 : TR;
                if (cpt) /* the chunk's panels of the Ĉ packed for pass 1 (c0 is a multiple of the panel width) */
                    er_gemm_packed_nt(rb, ah + (size_t)r0 * D, D, cpt + (size_t)c0 * D, cc, D, T, cc);
                else
                    er_gemm(0, 1, rb, cc, D, ah + (size_t)r0 * D, D, ch + (size_t)c0 * D, D, NULL, T, cc, 0);
                for (int r = 0; r < rb; r++) {
                    exp_rows_scale(T + (size_t)r * cc, cc, it, rmx[r0 + r], ginv / rz[r0 + r]);
                }
                /* dĈ_chunk (cc, D) += Tᵀ (cc, rb) · Â_rows (rb, D) */
                er_gemm(1, 0, cc, D, rb, T, cc, ah + (size_t)r0 * D, D, NULL, out, D, 1);
            }
        }
    }
    double loss = 0;
    for (int r = 0; r < na; r++) loss += rloss[r];
    size_t nad = (size_t)na * D;
    if (dA) {
        for (size_t k = 0; k < nad; k++) dah[k] -= ginv * bh[k];
        unnormalise_grad(ah, na_, dah, na, D, dA);
    }
    if (dB) {
        /* dB̂ = −(scale/τ) Â (reuse dah) */
        for (size_t k = 0; k < nad; k++) dah[k] = -ginv * ah[k];
        unnormalise_grad(bh, nb_, dah, na, D, dB);
    }
    if (dC) unnormalise_grad(ch, nc_, dch, nc, D, dC);
    return loss;
}

size_t er_cf_recon_scratch(int m, int H) { return (size_t)2 * m * H + (size_t)2 * m + (size_t)RB * m + (size_t)RB * H; }

double er_cf_recon(const float *X, const float *Y, int m, int H, double tau, double scale, float *dX,
                   float *scratch, int threads) {
    if (threads < 1) threads = 1;
    float *xh = scratch, *yh = xh + (size_t)m * H, *nx = yh + (size_t)m * H, *ny = nx + m, *S = ny + m;
    float *dxh = S + (size_t)RB * m;
    normalise_rows(X, m, H, 1, xh, nx);
    normalise_rows(Y, m, H, 1, yh, ny);
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
        unnormalise_grad(xh + (size_t)r0 * H, nx + r0, dxh, rb, H, dX + (size_t)r0 * H);
    }
    return loss / m;
}

/* embedding.c — position ids and the summed word + token-type + position embeddings of a
 * packed batch, with the scatter-add backward. */
#include "kernels/kernels.h"

void er_positions(int *pos, const int32_t *ids, const int *off, int B, int roberta, int pad_id) {
    for (int b = 0; b < B; b++) {
        int p = roberta ? pad_id : 0;
        for (int t = off[b]; t < off[b + 1]; t++) pos[t] = roberta ? (ids[t] != pad_id ? ++p : pad_id) : p++;
    }
}

void er_embedding_forward(float *out, const float *wte, const float *wpe, const float *wtt, const int32_t *ids,
                          const int *pos, int N, int C, int nthreads) {
#pragma omp parallel for if (nthreads > 1) num_threads(nthreads > 1 ? nthreads : 1) schedule(static)
    for (int t = 0; t < N; t++) {
        const float *we = wte + (size_t)ids[t] * C, *pe = wpe + (size_t)pos[t] * C;
        float *x = out + (size_t)t * C;
        for (int i = 0; i < C; i++) x[i] = we[i] + wtt[i] + pe[i];
    }
}

/* columns split over threads, rows in order: thread-count independent */
void er_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                           const int *pos, int N, int C, int nthreads) {
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int i = 0; i < C; i++) {
        for (int t = 0; t < N; t++) {
            float d = dout[(size_t)t * C + i];
            dwte[(size_t)ids[t] * C + i] += d;
            dwpe[(size_t)pos[t] * C + i] += d;
            dwtt[i] += d;
        }
    }
}

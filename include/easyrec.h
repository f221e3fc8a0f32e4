/* easyrec.h — the one public header of libeasyrec.
 *
 * EasyRec (arXiv 2408.08821) in C: tokenize profile texts exactly like the reference,
 * encode them with a RoBERTa/BERT encoder loaded from a Hugging Face model directory,
 * and return L2-normalised embeddings whose dot products are the recommendation scores.
 *
 * Conventions: functions return EASYREC_OK (0) or a negative EASYREC_ERR_* code; the
 * reason is then available from easyrec_last_error() on the same thread. A loaded model
 * and tokenizer are immutable and may be shared by any number of threads; a context
 * (easyrec_ctx) holds one thread's scratch memory and must not be used by two threads at
 * once. *_free(NULL) is a no-op.
 *
 * Runtime rules (what a host program can rely on and what it must do):
 *  - No library call changes process-wide state: no BLAS thread count, no signal handler,
 *    no locale, no environment variable read (except the Hugging Face variables HF_HOME,
 *    HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE that easyrec_pull and the cache
 *    lookup of a "org/name" model document, as huggingface_hub), nothing printed, no exit. Progress and
 *    cancellation go through easyrec_encode_opts; errors through return codes and
 *    easyrec_last_error() on the calling thread, also when they arise on a worker thread.
 *  - Threads: every parallel region runs on opts.threads threads (OpenMP), never more.
 *  - BLAS: matrix products run on easyrec's own AVX-512 kernel where the CPU has it; on other
 *    CPUs, or with opts.gemm = EASYREC_GEMM_BLAS, each worker calls OpenBLAS. Results are
 *    correct either way, but a multi-threaded OpenBLAS inside easyrec's worker threads
 *    oversubscribes the cores: such a host should set OpenBLAS to one thread once at start
 *    (OPENBLAS_NUM_THREADS=1, openblas_set_num_threads(1), or easyrec_runtime_init()).
 *    easyrec leaves the host's setting as it found it.
 *  - Per-thread scratch (GEMM packing buffers, bf16/int8 activation buffers, BPE piece
 *    caches) is freed when the thread exits, or at once by easyrec_thread_cleanup(); encoder
 *    activations live in the easyrec_ctx and go with easyrec_ctx_free.
 */
#ifndef EASYREC_H
#define EASYREC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared here is the shared library's interface: exported even though the
 * library is compiled with -fvisibility=hidden (only easyrec_* symbols leave libeasyrec.so). */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/* Version of the library (semantic versioning). EASYREC_VERSION is what this header was
 * shipped with; easyrec_version() what the linked library is ("0.3.0"). */
#define EASYREC_VERSION_MAJOR 0
#define EASYREC_VERSION_MINOR 3
#define EASYREC_VERSION_PATCH 0
#define EASYREC_VERSION "0.3.0"
const char *easyrec_version(void);

enum easyrec_status {
    EASYREC_OK = 0,
    EASYREC_ERR_IO = -1,          /* file missing or unreadable */
    EASYREC_ERR_FORMAT = -2,      /* malformed or inconsistent input */
    EASYREC_ERR_NOMEM = -3,       /* allocation failed or size overflow */
    EASYREC_ERR_ARG = -4,         /* invalid argument */
    EASYREC_ERR_UNSUPPORTED = -5, /* valid input we do not handle (dtype, model type, ...) */
    EASYREC_ERR_CANCELLED = -6,   /* stopped because the caller's cancel flag was set */
};

/* The one process-wide setup the easyrec command line does first thing, for programs that
 * want the same (easyrec parallelises over batches itself). It does exactly two things, both
 * to the whole process: openblas_set_num_threads(1), and, when the linked OpenBLAS exports
 * its internal blas_thread_shutdown_ (pthread builds), stops OpenBLAS's idle worker threads
 * (OpenBLAS starts them again if a later call raises its thread count). The shutdown is not
 * safe while another thread is inside BLAS: call this once, at start, before any other thread
 * of the process (NumPy's included) uses BLAS. Optional; never called by the library, which
 * changes no process-wide state anywhere else. */
void easyrec_runtime_init(void);

/* Free the calling thread's scratch (GEMM packing buffers, BPE caches) now instead of at
 * thread exit; they are made again on demand. */
void easyrec_thread_cleanup(void);

/* Text of the last error on the calling thread; valid until the next easyrec call on it. */
const char *easyrec_last_error(void);

/* ---- tokenizer ---------------------------------------------------------------------- */

typedef struct easyrec_tokenizer easyrec_tokenizer;

typedef enum {
    EASYREC_TOKENIZER_BPE = 1,       /* RoBERTa / GPT-2 byte-level BPE */
    EASYREC_TOKENIZER_WORDPIECE = 2, /* BERT WordPiece */
} easyrec_tokenizer_kind;

/* Load the tokenizer of a model directory: vocab.json + merges.txt (RoBERTa), or
 * tokenizer.json of type BPE, or vocab.txt (+ tokenizer_config.json) for BERT.
 * On success *out is owned by the caller (easyrec_tokenizer_free). */
int easyrec_tokenizer_load(const char *dir, easyrec_tokenizer **out);
void easyrec_tokenizer_free(easyrec_tokenizer *tok);
easyrec_tokenizer_kind easyrec_tokenizer_kind_of(const easyrec_tokenizer *tok);
int easyrec_tokenizer_vocab_size(const easyrec_tokenizer *tok);
int easyrec_tokenizer_pad_id(const easyrec_tokenizer *tok);

/* Tokenize `len` bytes of text (need not be NUL-terminated; invalid UTF-8 is replaced by
 * U+FFFD like Python's errors="replace") into ids with the model's special tokens added
 * (<s> ... </s> or [CLS] ... [SEP]); content is truncated to the first max_length-2 tokens
 * (max_length <= 0: no truncation). Writes at most `cap` ids to `ids`. Returns the full
 * number of ids (may exceed cap: call again with a larger buffer) or a negative error. */
int easyrec_tokenize(const easyrec_tokenizer *tok, const char *text, size_t len, int max_length,
                     int32_t *ids, int cap);

/* Decode ids back to text (special tokens skipped when skip_special != 0). Writes a
 * NUL-terminated string of at most cap-1 bytes; returns the full byte length needed
 * (excluding NUL) or a negative error. */
int easyrec_detokenize(const easyrec_tokenizer *tok, const int32_t *ids, int n, int skip_special,
                       char *out, size_t cap);

/* Id of a token given in the vocabulary's own spelling (e.g. "<mask>", "Ġthe", "##ing"),
 * or EASYREC_ERR_ARG when there is none. */
int easyrec_tokenizer_token_id(const easyrec_tokenizer *tok, const char *token);

/* ---- model -------------------------------------------------------------------------- */

typedef struct easyrec_model easyrec_model;
typedef struct easyrec_ctx easyrec_ctx;

typedef enum {
    EASYREC_POOL_DEFAULT = 0, /* easyrec if the checkpoint has mlp.dense, else cls */
    EASYREC_POOL_EASYREC = 1, /* tanh(W_mlp h[0] + b_mlp): the EasyRec embedding */
    EASYREC_POOL_CLS = 2,     /* last-layer state of the first token */
    EASYREC_POOL_MEAN = 3,    /* mean of last-layer states over real tokens */
} easyrec_pooling;

typedef struct {
    int n_layers, hidden, n_heads, ffn, vocab_size, max_positions, type_vocab_size;
    int pad_id;
    float layer_norm_eps;
    int is_roberta;  /* 1: RoBERTa positions (padding_idx+1 offset), 0: BERT */
    int has_mlp;     /* checkpoint has the EasyRec head mlp.dense */
    int has_lm_head; /* checkpoint has an MLM head */
} easyrec_config;

/* Load a Hugging Face model directory: config.json, model.safetensors or pytorch_model.bin
 * (F32/F16/BF16; computed in fp32), and its tokenizer. A tensor holding NaN or Inf is an
 * error naming the tensor. The MLM head (lm_head.*), which
 * encoding never uses, is not loaded (has_lm_head is 0). *out owned by the caller. */
int easyrec_model_load(const char *dir, easyrec_model **out);
void easyrec_model_free(easyrec_model *m);
const easyrec_config *easyrec_model_config(const easyrec_model *m);
/* The model's tokenizer; owned by the model. */
const easyrec_tokenizer *easyrec_model_tokenizer(const easyrec_model *m);

/* Numeric precision of the encoder's Linear layers (docs/model.md, "Precision"). */
typedef enum {
    EASYREC_PRECISION_FP32 = 0, /* as loaded: everything fp32 */
    EASYREC_PRECISION_BF16 = 1, /* weights and activations rounded to bf16, products summed in fp32 */
    EASYREC_PRECISION_INT8 = 2, /* weights int8 per output channel, activations int8 per token
                                   (dynamic), int32 sums */
} easyrec_precision;

/* Convert the Linear weights of a loaded model once to precision p (LayerNorm, softmax,
 * GELU, residuals, embeddings and pooling stay fp32). isa: NULL for the best instruction set
 * this CPU has, or "avx512bf16" | "avx512vnni" | "avx512" | "avx2" | "scalar" to run at
 * most that level (slower, same results within docs/model.md's tolerance). Call before the
 * model is shared. The fp32 copies of converted weights are freed: the model can no longer
 * be saved or trained, nor converted to another precision (load it again). */
int easyrec_model_set_precision(easyrec_model *m, easyrec_precision p, const char *isa);
easyrec_precision easyrec_model_precision(const easyrec_model *m);
const char *easyrec_precision_name(easyrec_precision p); /* "fp32", "bf16", "int8" */
/* Bytes the model's weights occupy now (fp32 buffer + packed low-precision weights). */
size_t easyrec_model_weight_bytes(const easyrec_model *m);
/* What m's Linear layers run on: the instruction-set level of the bf16/int8 kernels, or the
 * fp32 GEMM's backend ("easyrec-avx512" / "cblas") for fp32 models. */
const char *easyrec_model_isa(const easyrec_model *m);
/* Best instruction-set level of this CPU for the bf16/int8 kernels, e.g. "avx512bf16". */
const char *easyrec_cpu_isa(void);

/* A new model with HF's initialisation (Linear/Embedding weights N(0, 0.02), biases 0,
 * LayerNorm 1/0, padding row 0) from a deterministic seed; no tokenizer attached. cfg's
 * has_mlp / has_lm_head choose the optional heads. */
int easyrec_model_init(const easyrec_config *cfg, uint64_t seed, easyrec_model **out);
/* Write config.json + model.safetensors (F32, the original's tensor names) into the
 * existing directory dir, each file atomically. Tokenizer files are not written. */
int easyrec_model_save(const easyrec_model *m, const char *dir);

/* Scratch of one caller thread (and of the workers it starts when opts.threads > 1).
 * Grows on demand to the largest batch seen; free with easyrec_ctx_free. easyrec
 * parallelises over batches itself (opts.threads); see the runtime rules above for BLAS. */
easyrec_ctx *easyrec_ctx_new(const easyrec_model *m);
void easyrec_ctx_free(easyrec_ctx *ctx);

typedef struct {
    int max_length;        /* truncation incl. specials; <= 0 means 512 (the reference) */
    int batch_tokens;      /* target real tokens per forward batch; <= 0 means 2048 */
    int batch_size;        /* at most this many sequences per batch; <= 0: no limit */
    int threads;           /* worker threads (each with its own scratch); <= 0 means 1 */
    easyrec_pooling pooling;
    int no_normalize;      /* 1: skip L2 normalisation */
    /* optional progress callback: called with (done, total) texts after each batch */
    void (*progress)(void *user, size_t done, size_t total);
    void *progress_user;
    /* optional cancellation: when *cancel becomes non-zero (set from any thread), encoding
     * stops after the batches in flight and returns EASYREC_ERR_CANCELLED */
    const volatile int *cancel;
    int gemm;              /* easyrec_gemm: matrix-product backend of this call */
} easyrec_encode_opts;

typedef enum {
    EASYREC_GEMM_AUTO = 0, /* easyrec's AVX-512 kernel where the CPU has it, else OpenBLAS */
    EASYREC_GEMM_OWN = 1,  /* the same (own kernel wherever supported) */
    EASYREC_GEMM_BLAS = 2, /* always OpenBLAS (cblas_sgemm) */
} easyrec_gemm;

/* Fill opts with the defaults (max_length 512, pooling default, normalised). */
void easyrec_encode_opts_init(easyrec_encode_opts *opts);

/* Embedding width D of the chosen pooling (hidden size). */
int easyrec_model_dim(const easyrec_model *m);
/* Longest sequence, specials included, that the model's position table allows (RoBERTa:
 * max_position_embeddings - padding_idx - 1, e.g. 512 of 514). Encoding truncates to
 * min(opts.max_length, this). */
int easyrec_model_max_length(const easyrec_model *m);

/* Encode n texts (texts[i] of lens[i] bytes, or NUL-terminated when lens == NULL) into
 * out, caller-owned n*D floats, row i for text i. Inputs are length-sorted internally
 * and batched without padding work; results are in input order. An embedding that comes
 * out non-finite (NaN/Inf: the activations overflowed) is an error naming the input. */
int easyrec_encode(easyrec_ctx *ctx, const char *const *texts, const size_t *lens, size_t n,
                   const easyrec_encode_opts *opts, float *out);

/* Encode already tokenized sequences (ids[i] of n_ids[i] ids, specials included). A
 * sequence longer than max_length (or than the position table allows) keeps its first
 * max_length-1 ids and its last id (the end token), as the tokenizer's truncation does. */
int easyrec_encode_ids(easyrec_ctx *ctx, const int32_t *const *ids, const int *n_ids, size_t n,
                       const easyrec_encode_opts *opts, float *out);

/* Last-layer hidden states of one tokenized sequence: out caller-owned n_ids*hidden. */
int easyrec_hidden_states(easyrec_ctx *ctx, const int32_t *ids, int n_ids, float *out);


/* ---- Hugging Face Hub (docs/hub.md) ------------------------------------------------- */

/* Options of easyrec_pull. NULL strings and 0 mean "from the environment, as huggingface_hub". */
typedef struct {
    const char *revision;  /* branch, tag or 40-hex commit; NULL: "main" */
    const char *cache_dir; /* NULL: $HF_HUB_CACHE, else $HF_HOME/hub, else
                              $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub */
    const char *endpoint;  /* NULL: $HF_ENDPOINT, else https://huggingface.co */
    const char *token;     /* NULL: $HF_TOKEN, else the file $HF_HOME/token; sent only as
                              "Authorization: Bearer"; never part of an error message */
    const char *include;   /* comma-separated glob patterns (fnmatch) of the files to fetch;
                              NULL: every file of the revision */
    int offline;           /* 1: no network, use the cache only (also when $HF_HUB_OFFLINE is
                              1/true/yes/on) */
    /* optional progress: called with the repository file being fetched and its bytes so
     * far / in all (total 0 when unknown); done == total once it is complete */
    void (*progress)(void *user, const char *file, uint64_t done, uint64_t total);
    void *progress_user;
} easyrec_pull_opts;

void easyrec_pull_opts_init(easyrec_pull_opts *opts);

/* Download the files of model repository repo_id ("org/name") at opts->revision into the
 * huggingface_hub cache layout (models--org--name/{blobs,snapshots/<commit>,refs}) and write
 * the snapshot directory (NUL-terminated) into path[cap]. Files already in the snapshot are
 * not fetched again; interrupted downloads resume (HTTP Range); every download is verified
 * (sha256 of LFS files, size of the others) before anything enters the snapshot. */
int easyrec_pull(const char *repo_id, const easyrec_pull_opts *opts, char *path, size_t cap);

/* Where a --model argument points: an existing directory is itself; "org/name" or
 * "org/name@revision" that is not a directory is looked up in the Hub cache (never the
 * network) and gives the snapshot directory. Otherwise EASYREC_ERR_IO with a message that
 * names the exact `easyrec pull` command to run. */
int easyrec_resolve_model(const char *name, char *path, size_t cap);

/* ---- ranking and evaluation over embeddings (src/eval/api.c) -------------------------- */

/* Interactions are given as CSR: row u's item ids are idx[ptr[u] .. ptr[u+1]), strictly
 * ascending, each in 0..n_items-1 (ptr has n_users+1 entries, ptr[0] = 0). */

/* For each user row of user_emb (n_users x dim, row-major), the k (1..n_items) items of
 * item_emb (n_items x dim) with the highest dot product, best first, ties in ascending item
 * order: out_idx (n_users x k). Items in the user's row of the optional exclusion CSR score
 * -1e8 (ranked last, as `easyrec eval` masks training items) and get score -inf in out_score
 * (optional, n_users x k: the dot products). threads <= 0: 1. */
int easyrec_topk(const float *user_emb, int64_t n_users, const float *item_emb, int64_t n_items, int dim, int k,
                 const int64_t *excl_ptr, const int32_t *excl_idx, int threads, int32_t *out_idx, float *out_score);

/* Zero-shot full-ranking Recall@K / NDCG@K exactly as `easyrec eval --user-emb --item-emb`:
 * users with >= 1 test item are evaluated, their training items (optional CSR) masked,
 * metrics averaged over them. ks: nk (1..8) cut-offs; recall / ndcg: nk values each;
 * n_evaluated (optional): the number of users evaluated. */
int easyrec_evaluate(const float *user_emb, int64_t n_users, const float *item_emb, int64_t n_items, int dim,
                     const int64_t *test_ptr, const int32_t *test_idx, const int64_t *train_ptr,
                     const int32_t *train_idx, const int *ks, int nk, int threads, double *recall, double *ndcg,
                     int64_t *n_evaluated);

/* ---- new declarations go ABOVE this line (below it they are not exported; the install
 * test checks that every function declared here is in libeasyrec.so) ---- */
#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif

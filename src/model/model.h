/* model.h — the encoder: configuration, the one parameter table, and the packed forward.
 *
 * Shapes (docs/style): L layers, C hidden, NH heads, HS = C/NH head size, F FFN width,
 * V vocab, P max positions, TT token-type rows; N = total real tokens of a packed batch,
 * B = sequences in it. Sequences are packed back to back (no padding rows at all):
 * sequence b owns rows [off[b], off[b] + len[b]) of every (N, ...) activation.
 */
#ifndef ER_MODEL_H
#define ER_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "easyrec.h"
#include "kernels/lowp.h"
#include "kernels/kernels.h"

/* ---- parameters ---- */

/* Every tensor of the model; views into one flat fp32 buffer sized from the table in
 * params.c. q/k/v are stored fused so one GEMM computes all three. */
typedef struct {
    float *wte;      /* (V, C)  word embeddings */
    float *wpe;      /* (P, C)  position embeddings */
    float *wtt;      /* (TT, C) token-type embeddings (row 0 used) */
    float *emb_lnw;  /* (C) */
    float *emb_lnb;  /* (C) */
    float *qkvw;     /* (L, 3C, C) rows: query, key, value */
    float *qkvb;     /* (L, 3C) */
    float *attprojw; /* (L, C, C) attention.output.dense */
    float *attprojb; /* (L, C) */
    float *ln1w;     /* (L, C) attention.output.LayerNorm */
    float *ln1b;     /* (L, C) */
    float *fcw;      /* (L, F, C) intermediate.dense */
    float *fcb;      /* (L, F) */
    float *fcprojw;  /* (L, C, F) output.dense */
    float *fcprojb;  /* (L, C) */
    float *ln2w;     /* (L, C) output.LayerNorm */
    float *ln2b;     /* (L, C) */
    float *mlpw;     /* (C, C) EasyRec head mlp.dense (optional) */
    float *mlpb;     /* (C) */
    float *lmdw;     /* (C, C) lm_head.dense (optional) */
    float *lmdb;     /* (C) */
    float *lmlnw;    /* (C) lm_head.layer_norm */
    float *lmlnb;    /* (C) */
    float *lmdecw;   /* (V, C) lm_head.decoder.weight (untied) */
    float *lmbias;   /* (V) lm_head.bias == lm_head.decoder.bias */
} er_params;

/* Parameter groups: a checkpoint may lack the optional ones. */
enum { ER_GROUP_CORE = 0, ER_GROUP_MLP = 1, ER_GROUP_LM = 2 };

/* How a tensor starts when created from scratch (HF _init_weights; save.c). */
enum { ER_INIT_NORMAL = 0 /* N(0, 0.02) */, ER_INIT_ZERO, ER_INIT_ONE };

/* Symbolic dimensions of the table. */
enum { ER_DIM_NONE = 0, ER_DIM_C, ER_DIM_F, ER_DIM_V, ER_DIM_P, ER_DIM_TT };

typedef struct {
    const char *key;   /* checkpoint key without the model prefix; "%d" = layer index */
    size_t field;      /* offsetof(er_params, ...) */
    int per_layer;     /* 1: one tensor per layer, stacked along the first axis */
    int part, nparts;  /* slot within a fused tensor (q/k/v: 0..2 of 3), else 0 of 1 */
    int rows, cols;    /* checkpoint shape [rows, cols], cols == ER_DIM_NONE for 1-D */
    int group;
    int prefixed;      /* 1: key lives under "roberta."/"bert." (encoder), 0: top level */
    er_dtype dtype;    /* in-memory type: ER_DT_F32 for all today; bf16/int8 weights plug in here */
    int init;          /* ER_INIT_* */
    int decay;         /* 1: AdamW weight decay applies (not to biases and LayerNorm weights) */
} er_param_spec;

extern const er_param_spec er_param_table[];
extern const int er_param_table_len;

/* Value of a symbolic dimension (ER_DIM_*) for config c; 1 for ER_DIM_NONE. */
int64_t er_params_dim(const easyrec_config *c, int d);
/* Whether group g (ER_GROUP_*) is part of a model with config c. */
int er_params_group_present(const easyrec_config *c, int g);
/* Number of floats of one table entry (all layers and parts) for config c. */
size_t er_params_numel(const easyrec_config *c, const er_param_spec *s);
/* Total floats of all groups present in c (has_mlp / has_lm_head). */
size_t er_params_total(const easyrec_config *c);
/* Point every field of p into buf (er_params_total floats). */
void er_params_assign(const easyrec_config *c, er_params *p, float *buf);

/* The tensor named `name` (checkpoint key, with or without the encoder prefix) inside p;
 * *numel its size. NULL if the name is unknown or its group absent. */
float *er_params_find(const easyrec_config *c, const er_params *p, const char *name, size_t *numel);

/* ---- model ---- */

/* The Linear weights bf16/int8 replace (precision.c): per layer, then the EasyRec head. */
enum { ER_LIN_QKV = 0, ER_LIN_ATTPROJ = 1, ER_LIN_FC = 2, ER_LIN_FCPROJ = 3, ER_LIN_LAYER = 4, ER_LIN_MLP = 4,
       ER_LIN_COUNT = 5 };

struct easyrec_model {
    easyrec_config cfg;
    er_params w;                /* in bf16/int8 the converted Linear weights are NULL here */
    float *buf;                 /* the flat parameter buffer; owned */
    size_t nparams;             /* floats in buf */
    int precision;              /* easyrec_precision */
    int isa;                    /* er_isa the low-precision kernels run at */
    er_lowp_mat *lowp;          /* (L * 4 + 1) packed Linear weights, or NULL (fp32) */
    easyrec_tokenizer *tok;     /* owned; NULL if the directory has no tokenizer files */
    char *dir;                  /* owned copy of the directory path */
};

/* Named model shapes (tiny 2x128, small 6x768 = EasyRec-small, base 12x768, large 24x1024):
 * the one table, ended by a NULL name; er_model_preset_find returns NULL for other names. */
typedef struct {
    const char *name;
    int layers, hidden, heads, ffn;
} er_model_preset;
extern const er_model_preset er_model_presets[];
const er_model_preset *er_model_preset_find(const char *name);

/* config.json -> cfg (validated: positive sizes, C % NH == 0, known model_type). */
int er_config_load(const char *path, easyrec_config *cfg);
/* Fill m->w from the checkpoint in dir (safetensors preferred, else pytorch_model.bin);
 * the MLM head only when with_lm (encoding never uses it). */
int er_params_load_dir(easyrec_model *m, const char *dir, int with_lm);
/* easyrec_model_load, with the MLM head when the checkpoint has one and with_lm is set
 * (training); easyrec_model_load itself leaves it out (encode.c). */
int er_model_load(const char *dir, int with_lm, easyrec_model **out);

/* Keep the bottom n_layers (<= 0: all) and add the EasyRec / MLM heads when asked and
 * absent, initialised like easyrec_model_init from seed (save.c). */
int er_model_reshape(easyrec_model *m, int n_layers, int want_mlp, int want_lm, uint64_t seed);

/* Packed weight of Linear `which` (ER_LIN_*) of layer l (ignored for ER_LIN_MLP), or NULL
 * when the model runs in fp32 (precision.c). */
const er_lowp_mat *er_model_lowp(const easyrec_model *m, int which, int l);
/* The weight er_linear_forward takes for Linear `which` of layer l: the fp32 slice of the
 * parameter buffer, or the packed bf16/int8 matrix of a converted model. */
er_weight er_model_weight(const easyrec_model *m, int which, int l);
void er_model_lowp_free(easyrec_model *m);

/* ---- forward (forward.c, over the kernels of src/kernels/) ---- */

/* Scratch of one thread for packed batches of up to cap_tokens tokens and max_len tokens per
 * sequence. Sized once; forward never allocates. */
typedef struct {
    size_t cap_tokens;
    int cap_seqs, cap_len;
    float *x;      /* (N, C) residual stream */
    float *qkv;    /* (N, 3C) */
    float *atty;   /* (N, C) attention output before projection */
    float *a;      /* (N, C) after attention block */
    float *h;      /* (N, F) FFN hidden */
    float *scores; /* (cap_len, cap_len) attention probabilities of one head */
    int32_t *ids;  /* (N) token ids of the packed batch */
    int *pos;      /* (N) position ids */
    int *off;      /* (B + 1) row offsets */
} er_acts;

int er_acts_init(er_acts *a, const easyrec_config *c, size_t cap_tokens, int cap_seqs, int cap_len);
void er_acts_free(er_acts *a);

/* Encoder over a packed batch: ids (N) of B sequences with row offsets a->off[0..B]
 * (off[0] = 0, off[B] = N). Leaves last-layer states in a->x (N, C). With first_only the
 * last layer is computed only for each sequence's first row (exact for easyrec/cls
 * pooling, and ~1/L of the work saved): a->x row b then holds sequence b's first-token
 * state (rows compacted to 0..B-1). */
void er_encoder_forward(const easyrec_model *m, er_acts *a, const int32_t *ids, int B, int first_only);

/* Poolers over a->x after er_encoder_forward(..., first_only = (pool != MEAN)); out (B, C). */
void er_pool_forward(const easyrec_model *m, const er_acts *a, int B, easyrec_pooling pool, float *out);

/* MLM head: logits (T, V) for rows [row0, row0+T) of a->x; z is (T, C) scratch. */
void er_model_lm_head_forward(const easyrec_model *m, const er_acts *a, int row0, int T, float *z,
                     float *logits);

/* ---- the forward pieces shared by inference (er_encoder_forward) and training
 * (train/train_encoder.c): the same code computes both ---- */

/* Dropout sites (kernels.h er_dropout): 4*l + {0: attention probabilities, 1: attention
 * projection, 2: FFN output} in layer l, ER_SITE_EMB after the embedding LayerNorm. */
#define ER_SITE_EMB 0xFFFFu
#define ER_SITE(l, k) ((uint32_t)(4 * (l) + (k)))

/* Where one encoder layer reads and writes; all (N, ·) row-major. Inference points the
 * tensors training keeps at reused scratch and leaves the kept-only ones NULL. Per layer
 * l, with x its input (post-LN):
 *   qkv = x Wqkv^T + bqkv;  atty = attention(qkv);  t = drop(atty Wo^T + bo)
 *   s1 = x + t;  a = LN1(s1);  hpre = a W1^T + b1;  h = GELU(hpre);  t2 = drop(h W2^T + b2)
 *   s2 = a + t2;  out = LN2(s2) */
typedef struct {
    float *x;                  /* (N, C) input; with first_only compacted in place */
    float *qkv;                /* (N, 3C) */
    float *probs;              /* attention probabilities (er_attn_shape: poff NULL = one (T, T) block) */
    float *atty;               /* (N, C) heads merged, before the output projection */
    float *t;                  /* (N, C) attention projection output (may alias a) */
    float *s1, *mean1, *rstd1; /* (N, C), (N), (N): kept for backward, or NULL */
    float *a;                  /* (N, C) LN1 output */
    float *hpre;               /* (N, F) kept for backward, or NULL (GELU in place in h) */
    float *h;                  /* (N, F) GELU output */
    float *t2;                 /* (N, C) FFN output (may alias atty) */
    float *s2, *mean2, *rstd2; /* kept for backward, or NULL */
    float *out;                /* (N, C) layer output (may alias x) */
} er_layer_io;

/* x (N, C) = drop(LN(wte[ids] + wtt[0] + wpe[pos])) of B packed sequences (rows off[]);
 * pos (N) filled; emb (N, C) keeps the pre-LN sum when not NULL; mean/rstd (N) or NULL. */
void er_embed_forward(const easyrec_model *m, const int32_t *ids, const int *off, int B, int *pos, float *emb,
                      float *x, float *mean, float *rstd, const er_dropout *drop, int nthreads);
/* Layer l over the packed batch described by as (off, B, poff, scratch; C and NH are set
 * from the model here). first_only: only each sequence's first row leaves the attention
 * (rows compacted to 0..B-1 for everything after it). */
void er_layer_forward(const easyrec_model *m, int l, const er_layer_io *io, const er_attn_shape *as, int first_only,
                      const er_dropout *drop, int nthreads);
/* The model's LM head as kernels see it (ER_ASSERT: the model has one). */
er_lm_head er_model_lm_head(const easyrec_model *m);

#endif

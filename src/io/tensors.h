/* tensors.h — a named set of tensors read from a checkpoint file, whatever the container,
 * plus .npy array I/O.
 *
 * safetensors.c (model.safetensors) and torchbin.c (pytorch_model.bin, PyTorch's zip +
 * pickle format) both fill an er_tensorset; the model loader only looks tensors up by name
 * and converts them to fp32 with er_tensor_to_f32(). Every offset, shape and stride has been
 * validated against the size of the bytes it points into before a set is returned.
 * tensors.c holds what the readers share; npy.c the .npy reader/writer. Byte layouts of
 * all these formats: docs/formats.md.
 */
#ifndef ER_TENSORS_H
#define ER_TENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ER_MAX_DIMS 8

typedef enum { ER_DT_F32 = 0, ER_DT_F16 = 1, ER_DT_BF16 = 2, ER_DT_F64 = 3, ER_DT_I64 = 4,
               ER_DT_I32 = 5, ER_DT_I8 = 6, ER_DT_U8 = 7, ER_DT_BOOL = 8 } er_dtype;

size_t er_dtype_size(er_dtype dt);
/* safetensors spelling: "F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL". */
const char *er_dtype_name(er_dtype dt);
/* 1 for F32/F16/BF16/F64. */
int er_dtype_is_float(er_dtype dt);

typedef struct {
    char *name;                    /* owned by the set */
    er_dtype dtype;
    int ndim;
    int64_t shape[ER_MAX_DIMS];
    int64_t stride[ER_MAX_DIMS];   /* in elements (contiguous for safetensors) */
    const uint8_t *data;           /* first element; points into the set's storage */
    size_t numel;                  /* product of shape */
} er_tensor;

typedef struct er_tensorstore er_tensorstore; /* private to the readers (below) */

typedef struct {
    er_tensor *t;                  /* n tensors, in file order */
    int n;
    er_tensorstore *priv;          /* storage backing every tensor's data; er_tensorset_close */
} er_tensorset;

/* Open model.safetensors (mmap'd). Returns EASYREC_OK or an error naming the file. */
int er_safetensors_open(const char *path, er_tensorset *ts);
/* Parse safetensors bytes held in memory (not copied: buf must outlive ts). */
int er_safetensors_parse(const uint8_t *buf, size_t len, const char *what, er_tensorset *ts);

/* Open a torch.save zip checkpoint (pytorch_model.bin): data.pkl + data/<key> storages. */
int er_torchbin_open(const char *path, er_tensorset *ts);
/* Same from an in-memory zip (copied as needed; buf may be freed after return). */
int er_torchbin_parse(const uint8_t *buf, size_t len, const char *what, er_tensorset *ts);

/* Release a set filled by er_safetensors_open/_parse or er_torchbin_open/_parse. A zeroed set,
 * or one whose open failed (the readers leave it zeroed), is a no-op; ts is zeroed after. */
void er_tensorset_close(er_tensorset *ts);
/* Done with t's bytes: for a memory-mapped file, drop its pages from the resident set
 * (they are re-read from the file if touched again; never zeroed). No-op for heap-backed
 * sets. Lets a loader convert tensor by tensor without holding the file and the converted
 * weights in memory at once. */
void er_tensorset_release(const er_tensorset *ts, const er_tensor *t);
/* Tensor by exact name (binary search), NULL if absent. Owned by ts. */
const er_tensor *er_tensorset_find(const er_tensorset *ts, const char *name);

/* Convert t (any dtype: floats exactly, integers and bools by value; honouring strides)
 * into out, caller-owned t->numel floats, in row-major order of t->shape. */
void er_tensor_to_f32(const er_tensor *t, float *out);
/* IEEE half and bfloat16 bit patterns to float (exact, including subnormals, inf, NaN). */
float er_f16_to_f32(uint16_t h);
float er_bf16_to_f32(uint16_t h);

/* One tensor to write: name, fp32 data (row-major), shape. */
typedef struct {
    const char *name;
    const float *data;
    int ndim;
    int64_t shape[ER_MAX_DIMS];
} er_tensor_out;

/* Write n F32 tensors as a .safetensors file, atomically (er_safetensors_write.c). */
int er_safetensors_write(const char *path, const er_tensor_out *t, int n);

/* Write a float32 C-order .npy file (format 1.0, '<f4') atomically (temp file + rename).
 * shape has ndim (0..ER_MAX_DIMS) non-negative dims; data holds their product floats. */
int er_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);
/* Read a little-endian float32 (or float64/float16, converted) C-order .npy file, format
 * 1.0/2.0/3.0. On success *data is malloc'd (caller frees; non-NULL even when empty) and
 * holds the product of shape[0..*ndim) floats. */
int er_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[ER_MAX_DIMS]);
/* Same from bytes in memory (`what` names them in messages). */
int er_npy_parse_f32(const uint8_t *buf, size_t len, const char *what, float **data, int *ndim,
                  int64_t shape[ER_MAX_DIMS]);

/* A .npy file as float32 without a copy where possible: '<f4' data is read in place from a
 * read-only mapping of the file; other dtypes (and files that cannot be mapped) are converted
 * into an owned buffer as er_npy_read_f32 does. Same formats and checks. data (numel floats,
 * row-major) is valid until er_npy_close. */
typedef struct {
    const float *data;
    int ndim;
    int64_t shape[ER_MAX_DIMS];
    size_t numel;
    void *map; /* the mapping (NULL when converted) */
    size_t map_len;
    float *owned; /* the converted copy, or NULL */
} er_npy_view;
int er_npy_open_f32(const char *path, er_npy_view *v);
/* Unmap / free; NULL and a zeroed view are no-ops. */
void er_npy_close(er_npy_view *v);

/* ---- for the readers (safetensors.c, torchbin.c) ---------------------------------------- */

/* What a set owns besides its tensor array. */
struct er_tensorstore {
    void *map;          /* mmap'd file (er_safetensors_open), unmapped on close; or NULL */
    size_t map_len;
    void **bufs;        /* heap blocks (torch storages), freed on close */
    size_t nbufs, cap;
    int *order;         /* tensor indices sorted by name, for er_tensorset_find */
};

/* Allocate ts->t for n zeroed tensors and an empty store. On failure ts is left zeroed. */
int er_tensorset_alloc(er_tensorset *ts, int n);
/* Hand a heap block to the set (freed on close). On failure the block is freed. */
int er_tensorset_keep(er_tensorset *ts, void *block);
/* Sort the name index after every tensor is filled; a duplicate name is an error naming
 * `what` and the tensor. */
int er_tensorset_index(er_tensorset *ts, const char *what);
/* Fill t->stride (row-major, in elements) and t->numel from t->ndim and t->shape (dims
 * already checked non-negative). Returns -1 if a stride or the product of the non-zero
 * dims overflows int64, else 0. */
int er_tensor_contiguous(er_tensor *t);

#endif

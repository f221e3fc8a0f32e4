/* tensors.h — a named set of tensors read from a checkpoint file, whatever the container.
 *
 * safetensors.c (model.safetensors) and torchbin.c (pytorch_model.bin, PyTorch's zip +
 * pickle format) both fill an er_tensorset; the model loader only looks tensors up by name
 * and converts them to fp32 with tensor_to_f32(). Every offset, shape and stride has been
 * validated against the size of the bytes it points into before a set is returned.
 */
#ifndef ER_TENSORS_H
#define ER_TENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ER_MAX_DIMS 8

typedef enum { ER_DT_F32 = 0, ER_DT_F16 = 1, ER_DT_BF16 = 2, ER_DT_F64 = 3, ER_DT_I64 = 4,
               ER_DT_I32 = 5, ER_DT_I8 = 6, ER_DT_U8 = 7, ER_DT_BOOL = 8 } er_dtype;

size_t er_dtype_size(er_dtype dt);
const char *er_dtype_name(er_dtype dt);

typedef struct {
    char *name;                    /* owned by the set */
    er_dtype dtype;
    int ndim;
    int64_t shape[ER_MAX_DIMS];
    int64_t stride[ER_MAX_DIMS];   /* in elements (contiguous for safetensors) */
    const uint8_t *data;           /* first element; points into the set's storage */
    size_t numel;                  /* product of shape */
} er_tensor;

typedef struct {
    er_tensor *t;
    int n;
    /* storage backing every tensor's data; released by tensorset_close */
    void *priv;
} er_tensorset;

/* Open model.safetensors (mmap'd). Returns EASYREC_OK or an error naming the file. */
int safetensors_open(const char *path, er_tensorset *ts);
/* Parse safetensors bytes held in memory (not copied: buf must outlive ts). */
int safetensors_parse(const uint8_t *buf, size_t len, const char *what, er_tensorset *ts);

/* Open a torch.save zip checkpoint (pytorch_model.bin): data.pkl + data/<key> storages. */
int torchbin_open(const char *path, er_tensorset *ts);
/* Same from an in-memory zip (copied as needed; buf may be freed after return). */
int torchbin_parse(const uint8_t *buf, size_t len, const char *what, er_tensorset *ts);

void tensorset_close(er_tensorset *ts);
const er_tensor *tensorset_find(const er_tensorset *ts, const char *name);

/* Convert (with strides, any float dtype) into out, caller-owned t->numel floats, in
 * row-major order of t->shape. */
void tensor_to_f32(const er_tensor *t, float *out);

/* Write a float32 C-order .npy file atomically. shape has ndim dims. */
int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);
/* Read a float32 (or float64/float16, converted) C-order .npy file. *data malloc'd. */
int npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[ER_MAX_DIMS]);

#endif

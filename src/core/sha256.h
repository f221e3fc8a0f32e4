/* sha256.h — SHA-256 (FIPS 180-4), used to verify Hub downloads against their LFS oid. */
#ifndef ER_SHA256_H
#define ER_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes;  /* total message length so far */
    uint8_t buf[64];
    size_t fill;     /* bytes pending in buf */
} er_sha256;

void er_sha256_init(er_sha256 *s);
void er_sha256_update(er_sha256 *s, const void *data, size_t len);
/* Finish and write the 32-byte digest. */
void er_sha256_final(er_sha256 *s, uint8_t digest[32]);
/* Digest of a whole file as 64 lowercase hex characters + NUL; EASYREC_ERR_IO naming path. */
int er_sha256_file(const char *path, char hex[65]);

#endif

/* request.h — the JSON bodies of the server's routes, parsed and validated without a model
 * (so they can be fuzzed: fuzz/fuzz_serve_request.c), and the error body every route
 * answers with: OpenAI's {"error": {"message", "type", "code"}}.
 *
 * Each parser returns 0, or the HTTP status to answer (400 malformed / wrong type, 413 too
 * many inputs) with err filled. Parsed strings point into the json_t kept in the request
 * (er_req_free releases it). Untrusted input never crashes: every field is type-checked and
 * named in the message.
 */
#ifndef ER_SERVE_REQUEST_H
#define ER_SERVE_REQUEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char message[256];
    const char *type; /* "invalid_request_error", "authentication_error", "server_error", ... */
    const char *code; /* short machine-readable reason */
} er_http_err;

/* Fill err and return status. */
int er_http_error(er_http_err *err, int status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* {"error": {...}} as a malloc'd string (NULL on out of memory). */
char *er_http_error_body(const er_http_err *err);

/* An item or user id given in JSON: integer or non-empty string, as text + integer flag. */
typedef struct {
    char text[128];
    int is_int;
} er_json_id;

typedef struct {
    struct json_t *root;
    /* embeddings (OpenAI) and embed (TEI) */
    const char **texts; /* (n) NUL-free UTF-8 strings inside root */
    size_t *lens;
    int n;
    int base64;     /* OpenAI encoding_format "base64" */
    int normalize;  /* TEI "normalize" (default 1) */
    int truncate;   /* TEI "truncate" (default 0) */
    const char *model; /* OpenAI "model" (may be NULL) */
    /* recommend */
    const char *profile; /* recommend by text, or the profile of PUT user / item */
    size_t profile_len;
    int has_user;
    er_json_id user;
    int k;
    int exclude_seen;
    er_json_id *ids; /* recommend "exclude", interactions "items" */
    int n_ids;
    char *meta;     /* PUT /items: other fields as a compact JSON object text (malloc'd) */
} er_req;

void er_req_free(er_req *r);

/* POST /v1/embeddings: {"input": str | [str...], "model"?, "encoding_format"?: "float"|"base64",
 * "dimensions"?: D (must equal dim when given), "user"?}; at most max_inputs inputs. */
int er_parse_embeddings(const char *body, size_t len, int max_inputs, int dim, er_req *r, er_http_err *err);
/* POST /embed: {"inputs": str | [str...], "normalize"?: bool, "truncate"?: bool}. */
int er_parse_tei(const char *body, size_t len, int max_inputs, er_req *r, er_http_err *err);
/* POST /recommend: {"profile": str} or {"user_id": id}, "k"?: 1..max_k (default 20),
 * "exclude"?: [ids], "exclude_seen"?: bool. */
int er_parse_recommend(const char *body, size_t len, int max_k, int max_ids, er_req *r, er_http_err *err);
/* PUT /users/{id}/profile: {"profile": str}. */
int er_parse_profile(const char *body, size_t len, er_req *r, er_http_err *err);
/* POST /users/{id}/interactions: {"items": [ids]} (1..max_ids). */
int er_parse_interactions(const char *body, size_t len, int max_ids, er_req *r, er_http_err *err);
/* PUT /items/{id}: {"profile": str, <metadata fields>}. */
int er_parse_item(const char *body, size_t len, er_req *r, er_http_err *err);

/* Id from a URL path segment (already percent-decoded): 1..127 bytes, no control bytes. */
int er_path_id(const char *s, size_t len, er_json_id *out, er_http_err *err);

/* Standard base64 of n bytes into out (4*ceil(n/3) + 1 bytes, NUL-terminated). */
void er_base64(const unsigned char *in, size_t n, char *out);

#endif

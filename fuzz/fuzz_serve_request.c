/* fuzz_serve_request.c — libFuzzer target for the server's request handling without a model
 * (src/serve/request.c): the input is a request body given to every route's parser
 * (embeddings, TEI, recommend, profile, interactions, item) and, up to its first NUL, a URL
 * id; whatever is accepted is checked for the documented limits, every error is rendered as
 * the OpenAI error body. Seeds: fuzz/seeds/fuzz_serve_request/.
 */
#include <stdlib.h>
#include <string.h>

#include "serve/request.h"

static void check_err(int st, er_http_err *e) {
    if (st == 0) return;
    if (st != 400 && st != 413 && st != 500) abort();
    char *b = er_http_error_body(e);
    if (!b || !strstr(b, "\"error\"")) abort();
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *body = (const char *)data;
    er_req r;
    er_http_err e;
    int st;
    st = er_parse_embeddings(body, size, 4, 32, &r, &e);
    if (!st && (r.n < 1 || r.n > 4 || !r.texts[0])) abort();
    check_err(st, &e);
    er_req_free(&r);
    st = er_parse_tei(body, size, 4, &r, &e);
    if (!st && (r.n < 1 || r.n > 4)) abort();
    check_err(st, &e);
    er_req_free(&r);
    st = er_parse_recommend(body, size, 50, 8, &r, &e);
    if (!st && (r.k < 1 || r.k > 50 || r.n_ids > 8 || (!r.profile == !r.has_user))) abort();
    check_err(st, &e);
    er_req_free(&r);
    st = er_parse_profile(body, size, &r, &e);
    if (!st && !r.profile) abort();
    check_err(st, &e);
    er_req_free(&r);
    st = er_parse_interactions(body, size, 8, &r, &e);
    if (!st && (r.n_ids < 1 || r.n_ids > 8)) abort();
    for (int i = 0; !st && i < r.n_ids; i++)
        if (!r.ids[i].text[0] || strlen(r.ids[i].text) >= sizeof r.ids[i].text) abort();
    check_err(st, &e);
    er_req_free(&r);
    st = er_parse_item(body, size, &r, &e);
    if (!st && (!r.meta || r.meta[0] != '{')) abort();
    check_err(st, &e);
    er_req_free(&r);
    const uint8_t *nul = memchr(data, 0, size);
    er_json_id id;
    st = er_path_id(body, nul ? (size_t)(nul - data) : size, &id, &e);
    check_err(st, &e);
    size_t n = size < 64 ? size : 64;
    char b64[4 * 22 + 1];
    er_base64(data, n, b64);
    if (strlen(b64) != (n + 2) / 3 * 4) abort();
    return 0;
}

/* profile.c — run one `easyrec profile` task: hand the units not yet in the journal to the
 * LLM client, check each answer (one repair request when it has the wrong shape), append
 * the finished records, list the failures, and write the release files once every record
 * is present (profile.h). */
#include "profile/profile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "profile/journal.h"

enum { ST_PENDING, ST_FLIGHT, ST_DONE, ST_FAILED };

typedef struct {
    size_t idx;
    int repair;               /* this is the repair request */
    char *user, *answer, *fix; /* owned message texts */
} callctx;

typedef struct {
    const er_profile_opts *o;
    er_prof_prompts pr;
    er_prof_unit *u;
    size_t n, cursor;
    uint8_t *state;
    callctx **rq; /* repair requests to send */
    size_t nrq, caprq;
    char **fail_reason; /* (n) */
    er_journal j;
    er_llm *llm;
    int64_t new_left;  /* limit */
    er_profile_progress p;
    double t0, last_progress;
    int fatal;
} run_t;

const char *er_profile_task_name(er_profile_task t) {
    return t == ER_PROFILE_ITEMS ? "items" : t == ER_PROFILE_USERS ? "users" : "diverse";
}

static void free_ctx(callctx *c) {
    if (!c) return;
    free(c->user);
    free(c->answer);
    free(c->fix);
    free(c);
}

static int next_call(void *ud, er_llm_call *call) {
    run_t *r = ud;
    if (r->fatal) return 0;
    callctx *c = NULL;
    if (r->nrq) {
        c = r->rq[--r->nrq];
    } else {
        while (r->cursor < r->n && r->state[r->cursor] != ST_PENDING) r->cursor++;
        if (r->cursor == r->n || (r->o->limit > 0 && r->new_left <= 0)) return 0;
        if (!(c = calloc(1, sizeof(*c)))) {
            r->fatal = er_error(EASYREC_ERR_NOMEM, "out of memory");
            return 0;
        }
        c->idx = r->cursor++;
        if (!(c->user = er_prof_fill(r->pr.user_tmpl[r->u[c->idx].side], "input", r->u[c->idx].input))) {
            free(c);
            r->fatal = er_error(EASYREC_ERR_NOMEM, "out of memory");
            return 0;
        }
        r->new_left--;
        r->state[c->idx] = ST_FLIGHT;
    }
    const er_prof_unit *u = &r->u[c->idx];
    call->key = (int64_t)c->idx;
    call->ud = c;
    call->role[0] = "system";
    call->content[0] = r->pr.system[u->side];
    call->role[1] = "user";
    call->content[1] = c->user;
    call->n_msgs = 2;
    if (c->repair) {
        call->role[2] = "assistant";
        call->content[2] = c->answer;
        call->role[3] = "user";
        call->content[3] = c->fix;
        call->n_msgs = 4;
    }
    return 1;
}

static void fail_unit(run_t *r, callctx *c, const char *why) {
    r->state[c->idx] = ST_FAILED;
    free(r->fail_reason[c->idx]);
    r->fail_reason[c->idx] = er_strdup(why);
    r->p.failed++;
    free_ctx(c);
}

static void call_done(void *ud, const er_llm_call *call, int ok, const char *text, size_t len) {
    run_t *r = ud;
    callctx *c = call->ud;
    if (!ok) {
        fail_unit(r, c, text);
        return;
    }
    char *a, *b;
    const er_prof_unit *u = &r->u[c->idx];
    const char *why = er_prof_validate(r->o->task, text, len, &a, &b);
    if (why) {
        if (c->repair) {
            char msg[256];
            snprintf(msg, sizeof msg, "answer not in the asked shape after a repair request: %s", why);
            fail_unit(r, c, msg);
            return;
        }
        c->repair = 1;
        c->answer = malloc(len + 1);
        c->fix = er_prof_fill(r->pr.repair, "error", why);
        if (c->answer) memcpy(c->answer, text, len), c->answer[len] = 0;
        if (r->nrq == r->caprq) {
            size_t cap = r->caprq ? r->caprq * 2 : 16;
            callctx **nq = realloc(r->rq, cap * sizeof(*nq));
            if (nq) r->rq = nq, r->caprq = cap;
        }
        if (!c->answer || !c->fix || r->nrq == r->caprq) {
            r->fatal = er_error(EASYREC_ERR_NOMEM, "out of memory");
            fail_unit(r, c, "out of memory");
            return;
        }
        r->rq[r->nrq++] = c;
        return;
    }
    const char *idk = u->side ? "user_id" : "item_id";
    json_t *rec = r->o->task == ER_PROFILE_DIVERSE
                      ? json_pack("{s:s,s:s,s:i,s:i,s:s}", "key", u->key, "side", u->side ? "user" : "item", "k", u->k,
                                  idk, u->id, "profile", a)
                      : json_pack("{s:s,s:i,s:s,s:s}", "key", u->key, idk, u->id, "profile", a, "reasoning", b);
    free(a);
    free(b);
    int rc = rec ? er_journal_append(&r->j, rec) : er_error(EASYREC_ERR_NOMEM, "out of memory");
    json_decref(rec);
    if (rc) {
        r->fatal = rc;
        fail_unit(r, c, "journal write failed");
        return;
    }
    r->state[c->idx] = ST_DONE;
    r->p.done++;
    free_ctx(c);
}

static void report(run_t *r) {
    r->p.elapsed_s = er_now() - r->t0;
    if (r->llm) r->p.llm = *er_llm_get_stats(r->llm);
    int64_t pend = 0;
    for (size_t k = 0; k < r->n; k++) pend += r->state[k] == ST_PENDING || r->state[k] == ST_FLIGHT;
    r->p.pending = pend;
    if (r->o->progress) r->o->progress(r->o->ud, &r->p);
}

static int tick(void *ud) {
    run_t *r = ud;
    double t = er_now();
    if (t - r->last_progress >= 0.5) {
        r->last_progress = t;
        report(r);
    }
    return r->o->stop && r->o->stop(r->o->ud);
}

/* ---- final files ---------------------------------------------------------------------- */
typedef struct {
    run_t *r;
    strmap keys;   /* unit key -> unit index */
    char **text;   /* (n) profile of each unit */
    char **reason; /* (n) */
} collect_t;

static int collect(void *ud, json_t *rec) {
    collect_t *c = ud;
    const char *k = json_string_value(json_object_get(rec, "key"));
    int32_t x = er_strmap_find(&c->keys, k, strlen(k));
    if (x < 0) return EASYREC_OK; /* a record of another configuration (e.g. more rewrites) */
    int32_t idx = c->keys.e[x].val;
    json_t *p = json_object_get(rec, "profile"), *re = json_object_get(rec, "reasoning");
    if (!json_is_string(p)) return er_error(EASYREC_ERR_FORMAT, "journal record %s has no profile", k);
    if (!c->text[idx] && !(c->text[idx] = er_strdup(json_string_value(p)))) return EASYREC_ERR_NOMEM;
    if (json_is_string(re) && !c->reason[idx] && !(c->reason[idx] = er_strdup(json_string_value(re))))
        return EASYREC_ERR_NOMEM;
    return EASYREC_OK;
}

static int write_lines(run_t *r, collect_t *c, int side, int k, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    int rc = EASYREC_OK;
    for (size_t x = 0; x < r->n && !rc; x++) {
        const er_prof_unit *u = &r->u[x];
        if (u->side != side || u->k != k) continue;
        json_t *o = json_pack("{s:i,s:s}", side ? "user_id" : "item_id", u->id, "profile", c->text[x]);
        if (o && r->o->task != ER_PROFILE_DIVERSE && c->reason[x])
            json_object_set_new(o, "reasoning", json_string(c->reason[x]));
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!s) rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
        else fprintf(f, "%s\n", s);
        free(s);
    }
    if (fclose(f) && !rc) rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
    if (!rc) rc = er_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

static int write_final(run_t *r, er_profile_result *res) {
    collect_t c = {r, {0}, er_calloc(r->n + 1, sizeof(char *)), er_calloc(r->n + 1, sizeof(char *))};
    int rc = c.text && c.reason ? er_strmap_init(&c.keys, (uint32_t)r->n + 16) : EASYREC_ERR_NOMEM;
    int added;
    for (size_t x = 0; x < r->n && !rc; x++) {
        int32_t v = er_strmap_intern(&c.keys, r->u[x].key, strlen(r->u[x].key), (int32_t)x, &added);
        if (v < 0) rc = v;
    }
    if (!rc) rc = er_journal_each(res->journal, collect, &c);
    for (size_t x = 0; x < r->n && !rc; x++)
        if (!c.text[x]) rc = er_error(EASYREC_ERR_FORMAT, "%s: no record for %s", res->journal, r->u[x].key);
    if (!rc) {
        char *dd = er_path_join(r->o->data_dir, "diverse_profile");
        if (r->o->task == ER_PROFILE_DIVERSE && dd && mkdir(dd, 0755) != 0 && errno != EEXIST)
            rc = er_error(EASYREC_ERR_IO, "%s: %s", dd, strerror(errno));
        int kmax = r->o->task == ER_PROFILE_DIVERSE ? r->o->n_diverse : 1;
        res->outputs[0] = 0;
        for (int side = 0; side < 2 && !rc; side++)
            for (int k = 0; k < kmax && !rc; k++) {
                int has = 0;
                for (size_t x = 0; x < r->n && !has; x++) has = r->u[x].side == side && r->u[x].k == k;
                if (!has) continue;
                char name[96];
                if (r->o->task == ER_PROFILE_DIVERSE)
                    snprintf(name, sizeof name, "diverse_profile/diverse_%s_profile_%d.json", side ? "user" : "item", k);
                else snprintf(name, sizeof name, "%s_profile.json", side ? "user" : "item");
                char *path = er_path_join(r->o->data_dir, name);
                rc = path ? write_lines(r, &c, side, k, path) : EASYREC_ERR_NOMEM;
                free(path);
                size_t ol = strlen(res->outputs);
                if (ol + strlen(name) + 3 < sizeof res->outputs)
                    snprintf(res->outputs + ol, sizeof res->outputs - ol, "%s%s", ol ? ", " : "", name);
            }
        free(dd);
    }
    for (size_t x = 0; x < r->n; x++) {
        if (c.text) free(c.text[x]);
        if (c.reason) free(c.reason[x]);
    }
    free(c.text);
    free(c.reason);
    if (c.keys.slots) er_strmap_free(&c.keys);
    return rc;
}

static int write_failed(run_t *r, const char *path) {
    if (!r->p.failed) {
        unlink(path);
        return EASYREC_OK;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    for (size_t x = 0; x < r->n; x++)
        if (r->state[x] == ST_FAILED) fprintf(f, "%s\t%s\n", r->u[x].key, r->fail_reason[x] ? r->fail_reason[x] : "");
    fclose(f);
    int rc = er_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

int er_profile_run(const er_profile_opts *o, er_profile_result *res) {
    memset(res, 0, sizeof(*res));
    run_t r = {.o = o, .new_left = o->limit};
    r.j.fd = -1;
    r.t0 = r.last_progress = er_now();
    if (o->task == ER_PROFILE_DIVERSE && (o->n_diverse < 1 || o->n_diverse > 100))
        return er_error(EASYREC_ERR_ARG, "n_diverse must be 1..100");
    const char *tn = er_profile_task_name(o->task);
    snprintf(res->journal, sizeof res->journal, "%s/profile_journal/%s.jsonl", o->data_dir, tn);
    snprintf(res->failed_ids, sizeof res->failed_ids, "%s/profile_journal/%s_failed_ids.txt", o->data_dir, tn);
    int rc = er_prof_load_prompts(o->prompts_dir, o->task, &r.pr);
    if (rc) return rc;
    if ((rc = er_prof_build_units(o, &r.u, &r.n))) goto out;
    r.p.total = (int64_t)r.n;
    rc = EASYREC_ERR_NOMEM;
    if (!(r.state = er_calloc(r.n + 1, 1)) || !(r.fail_reason = er_calloc(r.n + 1, sizeof(char *)))) goto out;
    char jdir[600];
    snprintf(jdir, sizeof jdir, "%s/profile_journal", o->data_dir);
    if (!o->dry_run && mkdir(jdir, 0755) != 0 && errno != EEXIST) {
        rc = er_error(EASYREC_ERR_IO, "%s: %s", jdir, strerror(errno));
        goto out;
    }
    if (o->dry_run) { /* the keys already done, without creating anything */
        er_journal tmp = {0};
        tmp.fd = -1;
        if ((rc = er_strmap_init(&tmp.keys, 1024))) goto out;
        r.j = tmp;
        if (er_file_exists(res->journal)) {
            er_journal_close(&r.j);
            if ((rc = er_journal_open(&r.j, res->journal))) goto out;
        }
    } else if ((rc = er_journal_open(&r.j, res->journal))) {
        goto out;
    }
    for (size_t x = 0; x < r.n; x++)
        if (er_journal_has(&r.j, r.u[x].key)) r.state[x] = ST_DONE, r.p.skipped++;
    if (o->dry_run) {
        int shown = 0;
        int64_t left = o->limit > 0 ? o->limit : INT64_MAX;
        double chars = 0;
        for (size_t x = 0; x < r.n && left > 0; x++) {
            if (r.state[x] != ST_PENDING) continue;
            left--;
            char *user = er_prof_fill(r.pr.user_tmpl[r.u[x].side], "input", r.u[x].input);
            if (!user) {
                rc = EASYREC_ERR_NOMEM;
                goto out;
            }
            chars += (double)(strlen(user) + strlen(r.pr.system[r.u[x].side]));
            if (shown++ < 3 && o->show_prompt) o->show_prompt(o->ud, r.u[x].key, r.pr.system[r.u[x].side], user);
            free(user);
        }
        res->est_prompt_tokens = (int64_t)ceil(chars / 4);
        report(&r);
        res->p = r.p;
        rc = EASYREC_OK;
        goto out;
    }
    if ((rc = er_llm_new(&o->llm, &r.llm))) goto out;
    er_llm_driver d = {next_call, call_done, tick, &r};
    rc = er_llm_run(r.llm, &d);
    if (!rc && r.fatal) rc = r.fatal;
    /* repair requests never sent (stopped): back to pending */
    for (size_t q = 0; q < r.nrq; q++) {
        r.state[r.rq[q]->idx] = ST_PENDING;
        free_ctx(r.rq[q]);
    }
    r.nrq = 0;
    for (size_t x = 0; x < r.n; x++)
        if (r.state[x] == ST_FLIGHT) r.state[x] = ST_PENDING;
    report(&r);
    res->p = r.p;
    int rc2 = er_journal_close(&r.j);
    if (!rc) rc = rc2;
    if (!rc) rc = write_failed(&r, res->failed_ids);
    if (!rc && r.p.skipped + r.p.done == r.p.total) {
        rc = write_final(&r, res);
        res->complete = !rc;
    }
out:
    if (r.j.keys.slots || r.j.fd >= 0) er_journal_close(&r.j);
    er_llm_free(r.llm);
    for (size_t q = 0; q < r.nrq; q++) free_ctx(r.rq[q]);
    free(r.rq);
    for (size_t x = 0; r.fail_reason && x < r.n; x++) free(r.fail_reason[x]);
    free(r.fail_reason);
    free(r.state);
    er_prof_free_units(r.u, r.n);
    er_prof_free_prompts(&r.pr);
    return rc;
}

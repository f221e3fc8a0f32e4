/* opt.c — table-driven option parsing and --help for every easyrec subcommand (opt.h). */
#include "cli/opt.h"
#include "core/err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int opt_usage_error(const cli_cmd *cmd, const char *fmt, ...) {
    char raw[1024], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    er_sanitize_text(raw, msg, sizeof msg); /* values from argv may hold invisible characters */
    fprintf(stderr, "easyrec %s: %s\n(see easyrec %s --help)\n", cmd->name, msg, cmd->name);
    return 2;
}

cli_opt *opt_find(cli_cmd *cmd, const char *name) {
    for (cli_opt *o = cmd->opts; o && o->type != OPT_END; o++)
        if (!strcmp(o->name, name)) return o;
    return NULL;
}

static int has_range(const cli_opt *o) { return o->min != 0 || o->max != 0; }

static void range_text(const cli_opt *o, char *buf, size_t cap) {
    if (o->type == OPT_DOUBLE) snprintf(buf, cap, "%g..%g", o->min, o->max);
    else snprintf(buf, cap, "%.0f..%.0f", o->min, o->max);
}

/* Parse an integer exactly (no strtod: "1e3" and "2.5" are not integers). */
static int parse_integer(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == 0 || *end != 0) return -1;
    if (errno == ERANGE) return -2;
    *out = v;
    return 0;
}

static int choice_index(const char *choices, const char *v) {
    size_t n = strlen(v);
    int i = 0;
    for (const char *p = choices; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return i;
        if (!bar) break;
        p = bar + 1;
    }
    return -1;
}

static void choices_text(const char *choices, char *buf, size_t cap) {
    /* "a|b|c" -> "a, b or c" */
    size_t k = 0;
    int count = 1;
    for (const char *p = choices; *p; p++) count += *p == '|';
    int i = 0;
    for (const char *p = choices; *p && k + 8 < cap;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (i > 0) k += snprintf(buf + k, cap - k, "%s", i == count - 1 ? " or " : ", ");
        k += snprintf(buf + k, cap - k, "%.*s", (int)len, p);
        i++;
        if (!bar) break;
        p = bar + 1;
    }
    if (k >= cap) buf[cap - 1] = 0;
}

static int set_value(cli_cmd *cmd, cli_opt *o, const char *v, const char *from) {
    char rng[96];
    if (o->type != OPT_STR && o->type != OPT_LIST && *v == 0)
        return opt_usage_error(cmd, "%s%s: empty value", from, o->name);
    switch (o->type) {
    case OPT_INT:
    case OPT_I64: {
        long long x;
        int r = parse_integer(v, &x);
        if (r == -1) return opt_usage_error(cmd, "%s%s: '%s' is not an integer", from, o->name, v);
        double lo = has_range(o) ? o->min : (o->type == OPT_INT ? -2147483648.0 : -9.2e18);
        double hi = has_range(o) ? o->max : (o->type == OPT_INT ? 2147483647.0 : 9.2e18);
        if (r == -2 || (double)x < lo || (double)x > hi) {
            range_text(&(cli_opt){.type = OPT_INT, .min = lo, .max = hi}, rng, sizeof rng);
            return opt_usage_error(cmd, "%s%s: %s is out of range (%s)", from, o->name, v, rng);
        }
        if (o->type == OPT_INT) *(int *)o->dst = (int)x;
        else *(int64_t *)o->dst = (int64_t)x;
        break;
    }
    case OPT_DOUBLE: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (*end != 0 || !isfinite(x)) return opt_usage_error(cmd, "%s%s: '%s' is not a finite number", from, o->name, v);
        if (has_range(o) && (x < o->min || x > o->max)) {
            range_text(o, rng, sizeof rng);
            return opt_usage_error(cmd, "%s%s: %s is out of range (%s)", from, o->name, v, rng);
        }
        *(double *)o->dst = x;
        break;
    }
    case OPT_STR:
        if (*v == 0) return opt_usage_error(cmd, "%s%s: empty value", from, o->name);
        *(const char **)o->dst = v;
        break;
    case OPT_LIST: {
        if (*v == 0) return opt_usage_error(cmd, "%s%s: empty value", from, o->name);
        size_t old = o->owned_ ? strlen(o->owned_) : 0, n = strlen(v);
        char *s = realloc(o->owned_, old + n + 2);
        if (!s) return opt_usage_error(cmd, "out of memory");
        if (old) s[old++] = ',';
        memcpy(s + old, v, n + 1);
        o->owned_ = s;
        *(const char **)o->dst = s;
        break;
    }
    case OPT_CHOICE: {
        int i = choice_index(o->choices, v);
        if (i < 0) {
            choices_text(o->choices, rng, sizeof rng);
            return opt_usage_error(cmd, "%s%s must be %s, got '%s'", from, o->name, rng, v);
        }
        *(int *)o->dst = i;
        break;
    }
    case OPT_FLAG: {
        /* from the environment: 1/true/yes set it, 0/false/no/empty leave it */
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *(int *)o->dst = 1;
        else if (strcmp(v, "0") && strcmp(v, "false") && strcmp(v, "no"))
            return opt_usage_error(cmd, "%s%s: '%s' is not 1/0, true/false or yes/no", from, o->name, v);
        break;
    }
    case OPT_END: break;
    }
    o->seen = 1;
    return 0;
}

void opt_free(cli_cmd *cmd) {
    for (cli_opt *o = cmd->opts; o && o->type != OPT_END; o++) {
        free(o->owned_);
        o->owned_ = NULL;
    }
}

int opt_parse(cli_cmd *cmd, int argc, char **argv, char ***pos, int *npos) {
    int np = 0, rc;
    /* positional arguments are compacted to the front of argv+1 (argv itself is ours to reorder) */
    char **posv = argv + 1;
    for (cli_opt *o = cmd->opts; o && o->type != OPT_END; o++) o->seen = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == 0) {
            posv[np++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            opt_print_help(cmd, stdout);
            return OPT_HELP;
        }
        if (a[1] != '-') return opt_usage_error(cmd, "unknown option '%s' (options are --long-names)", a);
        char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        cli_opt *o = NULL;
        for (cli_opt *p = cmd->opts; p && p->type != OPT_END; p++)
            if (strlen(p->name) == nlen && !strncmp(p->name, name, nlen)) o = p;
        if (!o) return opt_usage_error(cmd, "unknown option '--%.*s'", (int)nlen, name);
        if (o->type == OPT_FLAG) {
            if (eq) return opt_usage_error(cmd, "--%s takes no value", o->name);
            *(int *)o->dst = 1;
            o->seen = 1;
            continue;
        }
        const char *v;
        if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else return opt_usage_error(cmd, "--%s needs a value (%s)", o->name, o->meta ? o->meta : "VALUE");
        if ((rc = set_value(cmd, o, v, "--"))) return rc;
    }
    /* environment for what the command line did not set */
    for (cli_opt *o = cmd->opts; o && o->type != OPT_END; o++) {
        if (o->seen || !o->env) continue;
        const char *v = getenv(o->env);
        if (!v || (!*v && o->type == OPT_FLAG)) continue;
        if ((rc = set_value(cmd, o, v, "--"))) {
            fprintf(stderr, "(the value came from the environment variable %s)\n", o->env);
            return rc;
        }
    }
    for (cli_opt *o = cmd->opts; o && o->type != OPT_END; o++)
        if (o->required && !o->seen) return opt_usage_error(cmd, "missing --%s %s", o->name, o->meta ? o->meta : "");
    if (np < cmd->min_pos)
        return opt_usage_error(cmd, "expected %s%s", cmd->min_pos > 1 ? "at least " : "",
                               cmd->pos_meta ? cmd->pos_meta : "an argument");
    if (cmd->max_pos >= 0 && np > cmd->max_pos)
        return opt_usage_error(cmd, "unexpected argument '%s'", posv[cmd->max_pos]);
    if (pos) *pos = posv;
    if (npos) *npos = np;
    return 0;
}

static void default_text(const cli_opt *o, char *buf, size_t cap) {
    buf[0] = 0;
    if (o->required || (o->help && strstr(o->help, "(default"))) return;
    switch (o->type) {
    case OPT_INT: snprintf(buf, cap, " (default %d)", *(int *)o->dst); break;
    case OPT_I64: snprintf(buf, cap, " (default %lld)", (long long)*(int64_t *)o->dst); break;
    case OPT_DOUBLE: snprintf(buf, cap, " (default %g)", *(double *)o->dst); break;
    case OPT_STR:
    case OPT_LIST: {
        const char *s = *(const char **)o->dst;
        if (s) snprintf(buf, cap, " (default %s)", s);
        break;
    }
    case OPT_CHOICE: {
        int idx = *(int *)o->dst, i = 0;
        for (const char *p = o->choices; *p; i++) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            if (i == idx) snprintf(buf, cap, " (default %.*s)", (int)len, p);
            if (!bar) break;
            p = bar + 1;
        }
        break;
    }
    default: break;
    }
}

void opt_print_help(const cli_cmd *cmd, FILE *f) {
    fprintf(f, "usage: easyrec %s %s\n", cmd->name, cmd->synopsis ? cmd->synopsis : "[options]");
    if (cmd->summary) fprintf(f, "%s\n", cmd->summary);
    fprintf(f, "\noptions:\n");
    for (const cli_opt *o = cmd->opts; o && o->type != OPT_END; o++) {
        char left[64], def[160], extra[160] = "";
        const char *meta = o->type == OPT_FLAG ? "" : o->type == OPT_CHOICE ? o->choices : o->meta ? o->meta : "VALUE";
        snprintf(left, sizeof left, "--%s%s%s", o->name, *meta ? " " : "", meta);
        default_text(o, def, sizeof def);
        if (o->env) snprintf(extra, sizeof extra, " [env %s]", o->env);
        if (strlen(left) > 22) fprintf(f, "  %s\n  %-22s %s%s%s%s\n", left, "", o->help ? o->help : "", def, extra,
                                       o->required ? " (required)" : "");
        else fprintf(f, "  %-22s %s%s%s%s\n", left, o->help ? o->help : "", def, extra, o->required ? " (required)" : "");
    }
    fprintf(f, "  %-22s %s\n", "--help", "this help");
}

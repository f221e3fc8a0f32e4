/* plot_svg.c — the scatter plot as a standalone SVG file (plot.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "viz/plot.h"

typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} sv;

static void out(sv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(sv *s, const char *fmt, ...) {
    if (s->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(s->b ? s->b + s->n : NULL, s->b ? s->cap - s->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (s->b && s->n + (size_t)k < s->cap) {
            s->n += (size_t)k;
            return;
        }
        size_t cap = s->cap ? s->cap * 2 : 1 << 16;
        while (cap < s->n + (size_t)k + 1) cap *= 2;
        char *nb = realloc(s->b, cap);
        if (!nb) {
            s->oom = 1;
            return;
        }
        s->b = nb;
        s->cap = cap;
    }
}

static void text(sv *s, const char *t) { /* XML-escaped */
    for (; t && *t; t++) {
        if (*t == '&') out(s, "&amp;");
        else if (*t == '<') out(s, "&lt;");
        else if (*t == '>') out(s, "&gt;");
        else if (*t == '"') out(s, "&quot;");
        else if ((unsigned char)*t >= 0x20 || *t == '\t') out(s, "%c", *t);
    }
}

int er_plot_svg(const er_plot *p, const char *path) {
    er_plot_frame f;
    int rc = er_plot_frame_of(p, &f);
    if (rc) return rc;
    sv s = {0};
    out(&s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out(&s, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"DejaVu Sans, Arial, sans-serif\">\n", f.w, f.h, f.w, f.h);
    out(&s, "<defs><marker id=\"head\" markerWidth=\"10\" markerHeight=\"8\" refX=\"9\" refY=\"4\" orient=\"auto\">"
            "<path d=\"M0,0 L10,4 L0,8 z\" fill=\"#111\"/></marker></defs>\n");
    out(&s, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    out(&s, "<text x=\"%d\" y=\"34\" font-size=\"20\" text-anchor=\"middle\">", f.w / 2);
    text(&s, p->title ? p->title : "t-SNE");
    out(&s, "</text>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#ccc\"/>\n",
        f.left - 10, f.top - 10, f.pw + 20, f.ph + 20);
    out(&s, "<g stroke=\"none\" fill-opacity=\"0.75\">\n");
    for (int i = 0; i < p->n; i++) {
        double x, y;
        er_plot_px(&f, p->xy[2 * i], p->xy[2 * i + 1], &x, &y);
        out(&s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"#%06x\"/>\n", x, y,
            er_plot_color(p->label ? p->label[i] : -1));
    }
    out(&s, "</g>\n");
    for (int a = 0; a < p->n_arrows; a++) {
        double x0, y0, x1, y1;
        er_plot_px(&f, p->xy[2 * p->arrows[2 * a]], p->xy[2 * p->arrows[2 * a] + 1], &x0, &y0);
        er_plot_px(&f, p->xy[2 * p->arrows[2 * a + 1]], p->xy[2 * p->arrows[2 * a + 1] + 1], &x1, &y1);
        out(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#111\" stroke-width=\"2.5\" "
                "marker-end=\"url(#head)\"/>\n", x0, y0, x1, y1);
    }
    for (int h = 0; h < p->n_highlight; h++) {
        int i = p->highlight[h];
        double x, y;
        er_plot_px(&f, p->xy[2 * i], p->xy[2 * i + 1], &x, &y);
        out(&s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"8\" fill=\"#%06x\" stroke=\"#111\" stroke-width=\"2\"/>\n", x, y,
            er_plot_color(p->label ? p->label[i] : -1));
        out(&s, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">", x + 11, y - 9);
        if (p->highlight_names && p->highlight_names[h]) text(&s, p->highlight_names[h]);
        else out(&s, "#%d", i);
        out(&s, "</text>\n");
    }
    for (int l = 0; l < p->n_labels; l++) {
        double y = f.top + 8 + 22 * l;
        out(&s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"#%06x\"/>", f.legend_x + 8, y, er_plot_color(l));
        out(&s, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\">", f.legend_x + 22, y + 5);
        text(&s, p->label_names[l]);
        out(&s, "</text>\n");
    }
    out(&s, "</svg>\n");
    if (s.oom) {
        free(s.b);
        return er_error(EASYREC_ERR_NOMEM, "%s: out of memory", path);
    }
    rc = er_write_file_atomic(path, s.b, s.n);
    free(s.b);
    return rc;
}

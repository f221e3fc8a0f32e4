/* plot.c — what the SVG and PNG back ends share: the frame (data range -> pixels, room for
 * the title and the legend), the palette and the argument checks. */
#include "viz/plot.h"

#include <math.h>

#include "core/err.h"

static const unsigned palette[20] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2,
                                     0x17becf, 0xbcbd22, 0x7f7f7f, 0xaec7e8, 0xffbb78, 0x98df8a, 0xff9896,
                                     0xc5b0d5, 0xc49c94, 0xf7b6d2, 0x9edae5, 0xdbdb8d, 0x393b79};

unsigned er_plot_color(int l) { return l < 0 ? 0xb0b0b0 : palette[l % 20]; }

int er_plot_check(const er_plot *p) {
    if (p->n < 1 || !p->xy) return er_error(EASYREC_ERR_ARG, "plot: no points");
    for (int i = 0; i < p->n_highlight; i++)
        if (p->highlight[i] < 0 || p->highlight[i] >= p->n)
            return er_error(EASYREC_ERR_ARG, "plot: highlighted row %d outside 0..%d", p->highlight[i], p->n - 1);
    for (int i = 0; i < 2 * p->n_arrows; i++)
        if (p->arrows[i] < 0 || p->arrows[i] >= p->n)
            return er_error(EASYREC_ERR_ARG, "plot: arrow row %d outside 0..%d", p->arrows[i], p->n - 1);
    for (int i = 0; i < p->n; i++) {
        if (!isfinite(p->xy[2 * i]) || !isfinite(p->xy[2 * i + 1]))
            return er_error(EASYREC_ERR_ARG, "plot: point %d is not finite", i);
        if (p->label && p->label[i] >= p->n_labels)
            return er_error(EASYREC_ERR_ARG, "plot: point %d has label %d of %d", i, p->label[i], p->n_labels);
    }
    return 0;
}

int er_plot_frame_of(const er_plot *p, er_plot_frame *f) {
    int rc = er_plot_check(p);
    if (rc) return rc;
    f->w = p->width > 0 ? p->width : 960;
    f->h = p->height > 0 ? p->height : 720;
    f->left = 30;
    f->top = 60;
    f->legend_x = f->w - 210;
    f->pw = f->legend_x - 20 - f->left;
    f->ph = f->h - f->top - 30;
    double x0 = p->xy[0], x1 = x0, y0 = p->xy[1], y1 = y0;
    for (int i = 1; i < p->n; i++) {
        x0 = fmin(x0, p->xy[2 * i]), x1 = fmax(x1, p->xy[2 * i]);
        y0 = fmin(y0, p->xy[2 * i + 1]), y1 = fmax(y1, p->xy[2 * i + 1]);
    }
    double sx = x1 > x0 ? f->pw / (x1 - x0) : 1, sy = y1 > y0 ? f->ph / (y1 - y0) : 1;
    double s = fmin(sx, sy); /* equal aspect: t-SNE distances mean the same both ways */
    f->sx = f->sy = s;
    f->x0 = (x0 + x1) / 2 - f->pw / 2 / s;
    f->y0 = (y0 + y1) / 2 + f->ph / 2 / s; /* top edge in data units */
    return 0;
}

void er_plot_px(const er_plot_frame *f, float x, float y, double *px, double *py) {
    *px = f->left + (x - f->x0) * f->sx;
    *py = f->top + (f->y0 - y) * f->sy;
}

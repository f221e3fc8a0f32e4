/* plot_png.c — the scatter plot as PNG through cairo (the same drawing as plot_svg.c). */
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "viz/plot.h"

static void rgb(cairo_t *c, unsigned col, double a) {
    cairo_set_source_rgba(c, ((col >> 16) & 255) / 255.0, ((col >> 8) & 255) / 255.0, (col & 255) / 255.0, a);
}

static void dot(cairo_t *c, double x, double y, double r) {
    cairo_new_path(c);
    cairo_arc(c, x, y, r, 0, 2 * M_PI);
}

int er_plot_png(const er_plot *p, const char *path) {
    er_plot_frame f;
    int rc = er_plot_frame_of(p, &f);
    if (rc) return rc;
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, f.w, f.h);
    cairo_t *c = cairo_create(surf);
    if (cairo_status(c) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(c);
        cairo_surface_destroy(surf);
        return er_error(EASYREC_ERR_NOMEM, "%s: cairo could not create a %dx%d image", path, f.w, f.h);
    }
    rgb(c, 0xffffff, 1);
    cairo_paint(c);
    cairo_select_font_face(c, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_text_extents_t te;
    const char *title = p->title ? p->title : "t-SNE";
    cairo_set_font_size(c, 20);
    cairo_text_extents(c, title, &te);
    rgb(c, 0x111111, 1);
    cairo_move_to(c, f.w / 2.0 - te.width / 2 - te.x_bearing, 34);
    cairo_show_text(c, title);
    rgb(c, 0xcccccc, 1);
    cairo_set_line_width(c, 1);
    cairo_rectangle(c, f.left - 10, f.top - 10, f.pw + 20, f.ph + 20);
    cairo_stroke(c);
    for (int i = 0; i < p->n; i++) {
        double x, y;
        er_plot_px(&f, p->xy[2 * i], p->xy[2 * i + 1], &x, &y);
        rgb(c, er_plot_color(p->label ? p->label[i] : -1), 0.75);
        dot(c, x, y, 3.5);
        cairo_fill(c);
    }
    for (int a = 0; a < p->n_arrows; a++) {
        double x0, y0, x1, y1;
        er_plot_px(&f, p->xy[2 * p->arrows[2 * a]], p->xy[2 * p->arrows[2 * a] + 1], &x0, &y0);
        er_plot_px(&f, p->xy[2 * p->arrows[2 * a + 1]], p->xy[2 * p->arrows[2 * a + 1] + 1], &x1, &y1);
        double ang = atan2(y1 - y0, x1 - x0), hl = 14;
        rgb(c, 0x111111, 1);
        cairo_set_line_width(c, 2.5);
        cairo_move_to(c, x0, y0);
        cairo_line_to(c, x1 - 0.8 * hl * cos(ang), y1 - 0.8 * hl * sin(ang));
        cairo_stroke(c);
        cairo_move_to(c, x1, y1);
        cairo_line_to(c, x1 - hl * cos(ang - 0.4), y1 - hl * sin(ang - 0.4));
        cairo_line_to(c, x1 - hl * cos(ang + 0.4), y1 - hl * sin(ang + 0.4));
        cairo_close_path(c);
        cairo_fill(c);
    }
    cairo_select_font_face(c, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(c, 14);
    for (int h = 0; h < p->n_highlight; h++) {
        int i = p->highlight[h];
        double x, y;
        er_plot_px(&f, p->xy[2 * i], p->xy[2 * i + 1], &x, &y);
        rgb(c, er_plot_color(p->label ? p->label[i] : -1), 1);
        dot(c, x, y, 8);
        cairo_fill_preserve(c);
        rgb(c, 0x111111, 1);
        cairo_set_line_width(c, 2);
        cairo_stroke(c);
        char name[32];
        const char *t = p->highlight_names && p->highlight_names[h] ? p->highlight_names[h] : name;
        snprintf(name, sizeof name, "#%d", i);
        cairo_move_to(c, x + 11, y - 9);
        cairo_show_text(c, t);
    }
    cairo_select_font_face(c, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    for (int l = 0; l < p->n_labels; l++) {
        double y = f.top + 8 + 22 * l;
        rgb(c, er_plot_color(l), 1);
        dot(c, f.legend_x + 8, y, 6);
        cairo_fill(c);
        rgb(c, 0x111111, 1);
        cairo_move_to(c, f.legend_x + 22, y + 5);
        cairo_show_text(c, p->label_names[l]);
    }
    cairo_destroy(c);
    cairo_surface_flush(surf);
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) {
        cairo_surface_destroy(surf);
        return er_error(EASYREC_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    cairo_status_t st = cairo_surface_write_to_png(surf, tmp);
    cairo_surface_destroy(surf);
    if (st != CAIRO_STATUS_SUCCESS) {
        unlink(tmp);
        free(tmp);
        return er_error(EASYREC_ERR_IO, "%s: cannot write PNG (%s)", path, cairo_status_to_string(st));
    }
    if (rename(tmp, path)) {
        unlink(tmp);
        free(tmp);
        return er_error(EASYREC_ERR_IO, "%s: cannot rename the written PNG into place", path);
    }
    free(tmp);
    return 0;
}

void er_plot_png_release(void) {
    cairo_debug_reset_static_data();
    FcFini();
}

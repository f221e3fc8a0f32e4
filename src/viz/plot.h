/* plot.h — a labelled 2-D scatter plot (t-SNE pictures): points coloured by label with a
 * legend, a title, highlighted points drawn large with their names, and arrows between
 * points. SVG (plot_svg.c, no dependency) or PNG (plot_png.c, cairo). Files are written
 * atomically. */
#ifndef ER_VIZ_PLOT_H
#define ER_VIZ_PLOT_H

typedef struct {
    int n;
    const float *xy;                /* (n, 2) */
    const int *label;               /* (n) index into label_names, -1 = unlabelled (grey) */
    int n_labels;
    const char *const *label_names; /* legend entries */
    const int *highlight;           /* rows drawn large, with outline */
    const char *const *highlight_names; /* text next to each (NULL entries / array: "#row") */
    int n_highlight;
    const int *arrows;              /* pairs (from, to) of rows */
    int n_arrows;
    const char *title;
    int width, height;              /* pixels; 0 = 960 x 720 */
} er_plot;

/* geometry shared by the back ends (plot.c) */
typedef struct {
    int w, h;
    double x0, y0, sx, sy; /* pixel = (x - x0) * sx + left, top + (y1 - y) * sy */
    double left, top, pw, ph, legend_x;
} er_plot_frame;

int er_plot_frame_of(const er_plot *p, er_plot_frame *f);
void er_plot_px(const er_plot_frame *f, float x, float y, double *px, double *py);
/* colour of label l as 0xRRGGBB (a fixed palette of 20, then repeating; -1: grey) */
unsigned er_plot_color(int l);
/* check rows of highlight/arrows against n */
int er_plot_check(const er_plot *p);

int er_plot_svg(const er_plot *p, const char *path);
int er_plot_png(const er_plot *p, const char *path);
/* Release cairo's and fontconfig's process-wide caches (font maps, configuration), which
 * they otherwise keep until exit (and leak checkers report). Process-wide: only for a
 * program's exit path, when no other thread uses cairo or fontconfig (the CLI calls it). */
void er_plot_png_release(void);

#endif

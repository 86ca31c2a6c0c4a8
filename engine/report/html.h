/* html: the HTML emitter of the report (render.h): one self-contained
 * file, its style inline, no script, nothing fetched (a Content Security
 * Policy says so too), with the SVG time line of svg.c. */
#ifndef BH_HTML_H
#define BH_HTML_H

#include "report/render.h"

extern const bh_render_emitter bh_html_emitter;

#endif

/* md: the Markdown emitter of the report (render.h): GitHub-flavoured
 * Markdown, tables and all. Nothing from the journal can end a table row,
 * open a link or an HTML tag, or start a code span; it reads as written. */
#ifndef BH_MD_H
#define BH_MD_H

#include "report/render.h"

extern const bh_render_emitter bh_md_emitter;

#endif

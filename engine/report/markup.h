/* markup: journal text in HTML and SVG (html.c, svg.c). Both are read by
 * a browser, in element text and in quoted attribute values alike, so
 * one escaping serves both. */
#ifndef BH_MARKUP_H
#define BH_MARKUP_H

#include <stdio.h>

/* s with < > & " ' as entities, so nothing in it opens a tag or ends an
 * attribute (NULL writes nothing). */
void bh_markup_text(FILE *out, const char *s);
/* A status as a class name: only [a-z_], so a journal cannot break out of
 * the attribute; anything else (and nothing) is "other". */
const char *bh_markup_class(const char *s);

#endif

/* svg: the report's time line as an SVG picture (html.c puts it in the
 * page): a row per step attempt and undo, in phase bands, each a bar
 * coloured by status (in doubt has a colour and outline of its own), the
 * approval waits on a step's first row and the retry backoffs after the
 * attempt they follow. Times on the model's time line (report.h). */
#ifndef BH_SVG_H
#define BH_SVG_H

#include <cjson/cJSON.h>
#include <stdio.h>

void bh_svg_timeline(const cJSON *model, FILE *out);

#endif

/*
 * voc: Pascal VOC, one XML file per image (filename, size, objects with a
 * name and a bndbox). Parsed with expat through the allocation funnel, with
 * nesting and text capped and any DOCTYPE refused (no entity can expand).
 * Reader of a file or a VOC folder, and writer of that folder.
 */
#include <expat.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "formats/internal.h"

typedef enum {
    T_OTHER, T_ANNOTATION, T_FILENAME, T_SIZE, T_WIDTH, T_HEIGHT, T_OBJECT, T_NAME, T_BNDBOX,
    T_XMIN, T_YMIN, T_XMAX, T_YMAX
} tag;

static const char *const coord_names[4] = {"xmin", "ymin", "xmax", "ymax"};

typedef struct ctx {
    XML_Parser p;
    lupe_fmt_doc *doc;
    const char *src;
    lupe_status st;        /* set by a handler that stopped the parser */
    int depth;
    tag stack[FMT_MAX_DEPTH + 2];
    fmt__sb text;          /* text of the leaf element being read */
    char *filename, *size[2];
    /* The object being read. */
    int obj_line;
    size_t nobj;
    char *obj_name, *coord[4];
    bool has_bndbox, obj_dup;
    const char *obj_dup_what;
    lupe_fmt_box *boxes;   /* boxes kept so far, added to the item at the end */
    size_t nboxes;
} ctx;

static void stop(ctx *c, lupe_status st, const char *fmt, const char *what)
{
    if (c->st) return;
    c->st = lupe_err(st, "%s:%lu: %s%s", c->src, (unsigned long)XML_GetCurrentLineNumber(c->p), fmt, what ? what : "");
    XML_StopParser(c->p, XML_FALSE);
}

static bool is_leaf(tag t)
{
    return t == T_FILENAME || t == T_WIDTH || t == T_HEIGHT || t == T_NAME || t >= T_XMIN;
}

static tag classify(tag parent, const char *name)
{
    static const struct {
        tag parent;
        const char *name;
        tag t;
    } rules[] = {
        {T_ANNOTATION, "filename", T_FILENAME}, {T_ANNOTATION, "size", T_SIZE}, {T_ANNOTATION, "object", T_OBJECT},
        {T_SIZE, "width", T_WIDTH},             {T_SIZE, "height", T_HEIGHT},   {T_OBJECT, "name", T_NAME},
        {T_OBJECT, "bndbox", T_BNDBOX},         {T_BNDBOX, "xmin", T_XMIN},     {T_BNDBOX, "ymin", T_YMIN},
        {T_BNDBOX, "xmax", T_XMAX},             {T_BNDBOX, "ymax", T_YMAX},
    };
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++)
        if (rules[i].parent == parent && strcmp(rules[i].name, name) == 0) return rules[i].t;
    return T_OTHER;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    ctx *c = ud;
    (void)attrs;
    if (c->st) return;
    if (c->depth >= FMT_MAX_DEPTH) {
        stop(c, LUPE_ELIMIT, "elements nested deeper than 32 levels", NULL);
        return;
    }
    tag t;
    if (c->depth == 0) {
        if (strcmp(name, "annotation") != 0) {
            stop(c, LUPE_EFORMAT, "the root element is not <annotation>", NULL);
            return;
        }
        t = T_ANNOTATION;
    } else {
        t = classify(c->stack[c->depth], name);
    }
    c->stack[++c->depth] = t;
    if (is_leaf(t)) c->text.len = 0;
    if (t == T_OBJECT) {
        c->nobj++;
        c->obj_line = (int)XML_GetCurrentLineNumber(c->p);
        c->has_bndbox = c->obj_dup = false;
    }
    if (t == T_BNDBOX) {
        if (c->has_bndbox) c->obj_dup = true, c->obj_dup_what = "bndbox";
        c->has_bndbox = true;
    }
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    ctx *c = ud;
    if (c->st || c->depth == 0 || !is_leaf(c->stack[c->depth])) return;
    if (c->text.len + (size_t)len > FMT_MAX_STR) {
        stop(c, LUPE_ELIMIT, "element text longer than 4096 bytes", NULL);
        return;
    }
    fmt__sb_put(&c->text, s, (size_t)len);
    if (c->text.failed) {
        c->st = LUPE_ENOMEM;
        XML_StopParser(c->p, XML_FALSE);
    }
}

/* The collected text, trimmed, as a funnel string. */
static char *take_text(ctx *c)
{
    const char *s = c->text.s ? c->text.s : "";
    size_t n = c->text.len;
    while (n && strchr(" \t\r\n", *s)) s++, n--;
    while (n && strchr(" \t\r\n", s[n - 1])) n--;
    return lupe_strndup(s, n);
}

static void clear_object(ctx *c)
{
    lupe_free(c->obj_name);
    c->obj_name = NULL;
    for (int k = 0; k < 4; k++) {
        lupe_free(c->coord[k]);
        c->coord[k] = NULL;
    }
}

/* Validates the finished object: a box, or a message saying why not. */
static void end_object(ctx *c)
{
    char msg[200], q[64];
    const char *bad = NULL;
    double v[4] = {0, 0, 0, 0};
    if (c->obj_dup) {
        snprintf(msg, sizeof msg, "<%s> appears twice", c->obj_dup_what);
        bad = msg;
    } else if (!c->obj_name || !c->obj_name[0]) {
        bad = "no <name>";
    } else if (!c->has_bndbox) {
        bad = "no <bndbox>";
    }
    for (int k = 0; k < 4 && !bad; k++) {
        if (!c->coord[k]) {
            snprintf(msg, sizeof msg, "no <%s>", coord_names[k]);
            bad = msg;
        } else if (fmt__parse_number(c->coord[k], strlen(c->coord[k]), &v[k], NULL) != 0) {
            snprintf(msg, sizeof msg, "<%s> %s is not a number", coord_names[k],
                     fmt__quote(q, sizeof q, c->coord[k], strlen(c->coord[k])));
            bad = msg;
        } else if (!isfinite(v[k]) || fabs(v[k]) > FMT_MAX_COORD) {
            snprintf(msg, sizeof msg, "<%s> %s is out of range", coord_names[k],
                     fmt__quote(q, sizeof q, c->coord[k], strlen(c->coord[k])));
            bad = msg;
        }
    }
    if (!bad && v[2] <= v[0]) {
        snprintf(msg, sizeof msg, "xmax %g is not greater than xmin %g", v[2], v[0]);
        bad = msg;
    }
    if (!bad && v[3] <= v[1]) {
        snprintf(msg, sizeof msg, "ymax %g is not greater than ymin %g", v[3], v[1]);
        bad = msg;
    }
    if (bad) {
        lupe_status st = lupe_fmt_doc_skip(c->doc, "%s:%d: object %zu: %s", c->src, c->obj_line, c->nobj, bad);
        if (st) {
            c->st = st;
            XML_StopParser(c->p, XML_FALSE);
        }
        clear_object(c);
        return;
    }
    int cls;
    lupe_status st = fmt__class_index(c->doc, c->obj_name, &cls);
    if (!st && c->nboxes >= FMT_MAX_BOXES)
        st = lupe_err(LUPE_ELIMIT, "more than %zu boxes for one image", FMT_MAX_BOXES);
    if (!st) {
        size_t cap = c->boxes ? lupe_alloc_size(c->boxes) / sizeof *c->boxes : 0;
        if (c->nboxes == cap) {
            lupe_fmt_box *b = lupe_realloc(c->boxes, (cap ? cap * 2 : 8) * sizeof *b);
            if (b) c->boxes = b;
            else st = LUPE_ENOMEM;
        }
    }
    if (st) {
        c->st = lupe_err_ctx(st, "%s:%d: object %zu", c->src, c->obj_line, c->nobj);
        XML_StopParser(c->p, XML_FALSE);
    } else {
        /* Corners are edge coordinates: x = xmin, w = xmax - xmin (see
         * docs/formats-labels.md for why not the devkit's +1). */
        c->boxes[c->nboxes++] = (lupe_fmt_box){cls, v[0], v[1], v[2] - v[0], v[3] - v[1]};
    }
    clear_object(c);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    ctx *c = ud;
    (void)name;
    if (c->st || c->depth == 0) return;
    tag t = c->stack[c->depth--];
    char **slot = NULL;
    const char *what = NULL;
    switch (t) {
    case T_FILENAME: slot = &c->filename, what = "filename"; break;
    case T_WIDTH: slot = &c->size[0], what = "width"; break;
    case T_HEIGHT: slot = &c->size[1], what = "height"; break;
    case T_NAME: slot = &c->obj_name, what = "name"; break;
    case T_XMIN: case T_YMIN: case T_XMAX: case T_YMAX:
        slot = &c->coord[t - T_XMIN], what = coord_names[t - T_XMIN];
        break;
    case T_OBJECT: end_object(c); return;
    default: return;
    }
    if (*slot) {
        if (t == T_FILENAME || t == T_WIDTH || t == T_HEIGHT) {
            stop(c, LUPE_EFORMAT, "element appears twice: ", what);
            return;
        }
        c->obj_dup = true, c->obj_dup_what = what;
        return;
    }
    if (!(*slot = take_text(c))) {
        c->st = LUPE_ENOMEM;
        XML_StopParser(c->p, XML_FALSE);
    }
}

/* A DTD is where entities are declared; refusing any DOCTYPE closes the
 * door on entity expansion bombs and external entities alike. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                               int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    stop(ud, LUPE_EFORMAT, "DOCTYPE is not allowed in a label file", NULL);
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value, int value_len,
                              const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
                              const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid, (void)pubid, (void)notation;
    stop(ud, LUPE_EFORMAT, "entity declarations are not allowed", NULL);
}

static const XML_Memory_Handling_Suite funnel = {lupe_malloc, lupe_realloc, lupe_free};

/* Feeds buf to expat; on success c holds the file's fields and boxes. */
static lupe_status run_expat(ctx *c, const char *buf, size_t len)
{
    c->p = XML_ParserCreate_MM(NULL, &funnel, NULL);
    if (!c->p) return lupe_err(LUPE_ENOMEM, "%s: out of memory creating the XML parser", c->src);
    XML_SetUserData(c->p, c);
    XML_SetElementHandler(c->p, on_start, on_end);
    XML_SetCharacterDataHandler(c->p, on_text);
    XML_SetStartDoctypeDeclHandler(c->p, on_doctype);
    XML_SetEntityDeclHandler(c->p, on_entity);
    XML_SetParamEntityParsing(c->p, XML_PARAM_ENTITY_PARSING_NEVER);
    /* XML_Parse takes an int length; feed big inputs in slices. */
    size_t off = 0, slice = (size_t)1 << 30;
    lupe_status st = LUPE_OK;
    do {
        size_t n = len - off < slice ? len - off : slice;
        int last = off + n == len;
        if (XML_Parse(c->p, buf + off, (int)n, last) != XML_STATUS_OK) {
            if (c->st) {
                st = c->st;
            } else if (XML_GetErrorCode(c->p) == XML_ERROR_NO_MEMORY) {
                st = lupe_err(LUPE_ENOMEM, "%s: out of memory parsing XML", c->src);
            } else {
                st = lupe_err(LUPE_EFORMAT, "%s:%lu: column %lu: %s", c->src,
                              (unsigned long)XML_GetCurrentLineNumber(c->p),
                              (unsigned long)XML_GetCurrentColumnNumber(c->p) + 1,
                              XML_ErrorString(XML_GetErrorCode(c->p)));
            }
            break;
        }
        off += n;
    } while (off < len);
    XML_ParserFree(c->p);
    c->p = NULL;
    return st;
}

static lupe_status make_item(ctx *c, const char *prefix)
{
    lupe_fmt_doc *doc = c->doc;
    char q[64];
    if (!c->filename || !c->filename[0]) return lupe_fmt_doc_skip(doc, "%s: no <filename>", c->src);
    long long wh[2] = {0, 0};
    for (int k = 0; k < 2; k++)
        if (c->size[k] && fmt__parse_int(c->size[k], strlen(c->size[k]), 0, (long long)FMT_MAX_COORD, &wh[k]) != 0)
            return lupe_fmt_doc_skip(doc, "%s: <%s> %s is not an image size", c->src, k ? "height" : "width",
                                     fmt__quote(q, sizeof q, c->size[k], strlen(c->size[k])));
    char *ref = lupe_asprintf("%s%s", prefix, c->filename);
    if (!ref) return LUPE_ENOMEM;
    lupe_fmt_item *it = NULL;
    lupe_status st = fmt__add_item(doc, ref, strlen(ref), &it);
    lupe_free(ref);
    if (st) return lupe_err_ctx(st, "%s", c->src);
    it->width = (int)wh[0];
    it->height = (int)wh[1];
    it->labeled = 1;
    it->line = (int)doc->nitems;
    for (size_t i = 0; i < c->nboxes && !st; i++) {
        const lupe_fmt_box *b = &c->boxes[i];
        st = lupe_fmt_item_add_box(it, b->cls, b->x, b->y, b->w, b->h);
    }
    return st;
}

static lupe_status parse(lupe_fmt_doc *doc, const char *buf, size_t len, const char *src, const char *prefix)
{
    ctx c = {0};
    c.doc = doc;
    c.src = src;
    fmt__mark mark;
    fmt__doc_mark(doc, &mark);
    lupe_status st = run_expat(&c, buf, len);
    if (!st) st = make_item(&c, prefix);
    fmt__sb_cleanup(&c.text);
    clear_object(&c);
    lupe_free(c.filename);
    lupe_free(c.size[0]);
    lupe_free(c.size[1]);
    lupe_free(c.boxes);
    if (st) fmt__doc_rollback(doc, &mark);
    return st;
}

lupe_status lupe_fmt_parse_voc(lupe_fmt_doc *doc, const char *buf, size_t len, const char *source_name)
{
    if (!doc || (!buf && len)) return lupe_err(LUPE_EARG, "lupe_fmt_parse_voc: NULL argument");
    return parse(doc, buf, len, source_name ? source_name : "<voc>", "");
}

static bool is_xml(const char *name)
{
    return fmt__ends_with_ci(name, ".xml");
}

/* ImageSets/Main/{train,val,test}.txt: image ids (stems) per split. */
static lupe_status read_splits(const char *root, fmt__map *splits)
{
    static const char *const names[3] = {"train", "val", "test"};
    for (size_t s = 0; s < 3; s++) {
        char *p = lupe_asprintf("%s/ImageSets/Main/%s.txt", root, names[s]), *buf = NULL;
        size_t len = 0;
        if (!p) return LUPE_ENOMEM;
        lupe_status st = lupe_path_exists(p) ? fmt__read_file(p, &buf, &len) : LUPE_OK;
        lupe_free(p);
        for (size_t pos = 0; !st && pos < len;) {
            const char *nl = memchr(buf + pos, '\n', len - pos);
            size_t end = nl ? (size_t)(nl - buf) : len, a = pos, b = end;
            pos = end + 1;
            while (a < b && strchr(" \t\r", buf[a])) a++;
            /* VOC's per-class lists say "id  1"; the id is the first word. */
            size_t w = a;
            while (w < b && !strchr(" \t\r", buf[w])) w++;
            if (w == a || w - a > FMT_MAX_STR) continue;
            char *id = lupe_strndup(buf + a, w - a);
            size_t prev;
            if (!id) st = LUPE_ENOMEM;
            else if (!memchr(buf + a, 0, w - a) && !fmt__map_get(splits, id, &prev)) st = fmt__map_put(splits, id, s);
            lupe_free(id);
        }
        lupe_free(buf);
        if (st) return st;
    }
    return LUPE_OK;
}

static lupe_status read_folder(lupe_fmt_doc *doc, const char *root)
{
    static const char *const split_names[3] = {"train", "val", "test"};
    lupe_status st = LUPE_OK;
    fmt__list l = {0};
    fmt__map splits = {0};
    char *ann = lupe_path_join(root, "Annotations"), *jpg = lupe_path_join(root, "JPEGImages");
    char *labels = lupe_path_join(root, "labels.txt"), *full = NULL, *buf = NULL;
    if (!ann || !jpg || !labels) {
        st = LUPE_ENOMEM;
        goto out;
    }
    /* labels.txt, written by lupe and by several annotation tools, fixes
     * the class order (and keeps classes that have no box). */
    if (lupe_path_exists(labels)) {
        size_t len = 0, k = 0;
        if ((st = fmt__read_file(labels, &buf, &len))) goto out;
        while (k < len && strchr(" \t\r\n", buf[k]) && buf[k]) k++;
        /* An empty list (an export with no classes) adds nothing. */
        if (k < len && (st = lupe_fmt_parse_yolo_classes(doc, buf, len, "labels.txt"))) goto out;
        lupe_free(buf);
        buf = NULL;
    }
    bool sub = fmt__is_dir(ann);
    const char *prefix = sub && fmt__is_dir(jpg) ? "JPEGImages/" : "";
    if ((st = read_splits(root, &splits))) goto out;
    if ((st = fmt__list_files(root, sub ? "Annotations" : "", false, is_xml, &l))) goto out;
    if (l.n == 0) {
        st = lupe_err(LUPE_ENOTFOUND, "%s: no .xml files%s", root, sub ? " in Annotations/" : "");
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        size_t len = 0, nitems = doc->nitems;
        lupe_free(full);
        lupe_free(buf);
        buf = NULL;
        if (!(full = lupe_path_join(root, l.paths[i]))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = fmt__read_file(full, &buf, &len))) goto out;
        st = parse(doc, buf, len, l.paths[i], prefix);
        if (st == LUPE_EFORMAT) {
            /* One broken file is one record: skipped with its message. */
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", lupe_errmsg());
            if ((st = lupe_fmt_doc_skip(doc, "%s", msg))) goto out;
            continue;
        }
        if (st) goto out;
        if (doc->nitems == nitems) continue; /* skipped, message given */
        lupe_fmt_item *it = &doc->items[doc->nitems - 1];
        it->line = (int)(i + 1);
        char stem[FMT_MAX_STR + 1];
        fmt__stem(fmt__basename(l.paths[i]), stem, sizeof stem);
        size_t s;
        if (fmt__map_get(&splits, stem, &s) && !(it->split = lupe_strdup(split_names[s]))) {
            st = LUPE_ENOMEM;
            goto out;
        }
    }
out:
    fmt__list_cleanup(&l);
    fmt__map_cleanup(&splits);
    lupe_free(ann);
    lupe_free(jpg);
    lupe_free(labels);
    lupe_free(full);
    lupe_free(buf);
    return st;
}

lupe_status fmt__voc_read(lupe_fmt_doc *doc, const char *path)
{
    if (fmt__is_dir(path)) return read_folder(doc, path);
    char *buf = NULL;
    size_t len = 0;
    lupe_status st = fmt__read_file(path, &buf, &len);
    if (!st) st = parse(doc, buf, len, fmt__basename(path), "");
    lupe_free(buf);
    return st;
}

static void put_xml_text(fmt__sb *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fmt__sb_puts(b, "&amp;"); break;
        case '<': fmt__sb_puts(b, "&lt;"); break;
        case '>': fmt__sb_puts(b, "&gt;"); break;
        case '"': fmt__sb_puts(b, "&quot;"); break;
        case '\'': fmt__sb_puts(b, "&apos;"); break;
        default: fmt__sb_put(b, s, 1);
        }
    }
}

static void put_coord(fmt__sb *b, const char *tagname, double v)
{
    fmt__sb_printf(b, "\t\t\t<%s>", tagname);
    fmt__sb_double(b, v);
    fmt__sb_printf(b, "</%s>\n", tagname);
}

lupe_status fmt__voc_write(const lupe_fmt_doc *doc, fmt__out *o)
{
    static const char *const splits[3] = {"train", "val", "test"};
    lupe_status st = LUPE_OK;
    fmt__sb x = {0}, lists[3] = {{0}, {0}, {0}};
    char *rel = NULL;
    for (size_t i = 0; i < doc->nitems; i++) {
        const lupe_fmt_item *it = &doc->items[i];
        if (!it->labeled) continue;
        const char *name = fmt__export_name(it);
        char stem[512];
        fmt__stem(name, stem, sizeof stem);
        lupe_free(rel);
        if (!(rel = lupe_asprintf("JPEGImages/%s", name))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = fmt__out_image(o, rel, it))) goto out;
        x.len = 0;
        fmt__sb_puts(&x, "<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>");
        put_xml_text(&x, name);
        fmt__sb_printf(&x, "</filename>\n\t<size>\n\t\t<width>%d</width>\n\t\t<height>%d</height>\n"
                           "\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n",
                       it->width, it->height);
        for (size_t k = 0; k < it->nboxes; k++) {
            double bx, by, bw, bh;
            fmt__box_pixels(it, k, &bx, &by, &bw, &bh);
            fmt__sb_puts(&x, "\t<object>\n\t\t<name>");
            put_xml_text(&x, doc->classes[it->boxes[k].cls]);
            fmt__sb_puts(&x, "</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
                             "\t\t<difficult>0</difficult>\n\t\t<bndbox>\n");
            put_coord(&x, "xmin", bx);
            put_coord(&x, "ymin", by);
            put_coord(&x, "xmax", bx + bw);
            put_coord(&x, "ymax", by + bh);
            fmt__sb_puts(&x, "\t\t</bndbox>\n\t</object>\n");
        }
        fmt__sb_puts(&x, "</annotation>\n");
        lupe_free(rel);
        if (!(rel = lupe_asprintf("Annotations/%s.xml", stem))) {
            st = LUPE_ENOMEM;
            goto out;
        }
        if ((st = fmt__sb_status(&x)) || (st = fmt__out_file(o, rel, x.s, x.len))) goto out;
        for (int s = 0; s < 3; s++)
            if (it->split && strcmp(it->split, splits[s]) == 0) fmt__sb_printf(&lists[s], "%s\n", stem);
    }
    for (int s = 0; s < 3; s++) {
        if (!lists[s].len) continue;
        char path[64];
        snprintf(path, sizeof path, "ImageSets/Main/%s.txt", splits[s]);
        if ((st = fmt__sb_status(&lists[s])) || (st = fmt__out_file(o, path, lists[s].s, lists[s].len))) goto out;
    }
    x.len = 0;
    for (size_t c = 0; c < doc->nclasses; c++) fmt__sb_printf(&x, "%s\n", doc->classes[c]);
    if ((st = fmt__sb_status(&x))) goto out;
    if ((st = fmt__out_file(o, "labels.txt", x.s ? x.s : "", x.len))) goto out;
    /* An export with no labeled item still gets its folder skeleton. */
    st = fmt__out_mkdir(o, "Annotations");
out:
    lupe_free(rel);
    fmt__sb_cleanup(&x);
    for (int s = 0; s < 3; s++) fmt__sb_cleanup(&lists[s]);
    return st;
}

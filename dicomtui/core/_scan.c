/*
 * dicomtui.core._scan: the element walk of header.py's fast path, in C.
 *
 * Same contract as header._top_explicit/_top_implicit (on "need more", the position of the top-level element to
 * read more from, as header._NeedMore.at) plus the cheap part of decoding: it walks the top level
 * of a little-endian data set from `pos`, skipping undefined-length sequences, keeps the configured attributes
 * and stops at Pixel Data. Values it can decode without ambiguity come back as Python objects (str, int,
 * float); anything else comes back as the raw bytes and header.py decodes it, so both paths give identical
 * records (tests/test_header.py checks that on every file pydicom ships and on mutated files).
 *
 * Every read is bounds-checked against the buffer; positions are 64-bit, lengths 32-bit, so no sum overflows.
 * Nesting deeper than MAX_DEPTH is "unsupported" (pydicom then reads the file).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { ST_DONE = 0, ST_NEED_MORE = 1, ST_UNSUPPORTED = 2, ST_TRUNCATED = 3 };
enum { K_STR = 0, K_TEXT = 1, K_MULTI = 2, K_INT = 3, K_FLOAT = 4, K_US = 5, K_RAW = 6 };
#define MAX_FIELDS 128
#define MAX_DEPTH 32
#define UNDEFINED 0xFFFFFFFFu
#define PIXEL_SW 0x00107FE0u /* (7FE0,0010) read as one little-endian uint32 */
#define FLOAT_PIXEL_SW 0x00087FE0u
#define DOUBLE_PIXEL_SW 0x00097FE0u

typedef struct {
    uint32_t tag_sw;
    int kind;
    PyObject *key; /* interned keyword */
} Field;

static Field fields[MAX_FIELDS];
static int nfields = 0;
static unsigned char vr_class[26][26]; /* 0 invalid, 1 short length, 2 long length */

static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int vr_of(const unsigned char *p) {
    if (p[0] < 'A' || p[0] > 'Z' || p[1] < 'A' || p[1] > 'Z') return 0;
    return vr_class[p[0] - 'A'][p[1] - 'A'];
}

static const Field *find_field(uint32_t tag_sw) {
    int lo = 0, hi = nfields - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (fields[mid].tag_sw == tag_sw) return &fields[mid];
        if (fields[mid].tag_sw < tag_sw) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

/* Status of running out of bytes at `pos`: more to read, or the file itself ends there. */
static int out_of_bytes(int64_t n, int64_t size) { return n < size ? ST_NEED_MORE : ST_TRUNCATED; }

static int walk_item(const unsigned char *b, int64_t n, int64_t size, int64_t *pos, int explicit_vr, int depth);

/* Skip the items of an undefined-length sequence starting at *pos; *pos ends after its delimiter. */
static int skip_sequence(const unsigned char *b, int64_t n, int64_t size, int64_t *pos, int explicit_vr, int depth) {
    if (depth > MAX_DEPTH) return ST_UNSUPPORTED;
    for (;;) {
        int64_t p = *pos;
        if (p + 8 > n) return out_of_bytes(n, size);
        uint16_t group = rd16(b + p), elem = rd16(b + p + 2);
        uint32_t length = rd32(b + p + 4);
        p += 8;
        if (group != 0xFFFE) return ST_UNSUPPORTED;
        if (elem == 0xE0DD) { *pos = p; return ST_DONE; }
        if (elem != 0xE000) return ST_UNSUPPORTED;
        if (length == UNDEFINED) {
            *pos = p;
            int st = walk_item(b, n, size, pos, explicit_vr, depth + 1);
            if (st != ST_DONE) return st;
        } else {
            *pos = p + (int64_t)length;
        }
    }
}

/* Walk the elements of an undefined-length item until its delimiter. */
static int walk_item(const unsigned char *b, int64_t n, int64_t size, int64_t *pos, int explicit_vr, int depth) {
    if (depth > MAX_DEPTH) return ST_UNSUPPORTED;
    for (;;) {
        int64_t p = *pos;
        if (p + 8 > n) return out_of_bytes(n, size);
        uint16_t group = rd16(b + p), elem = rd16(b + p + 2);
        uint32_t length;
        int64_t vpos;
        int long_vr = 0, un = 0;
        if (group == 0xFFFE) {
            length = rd32(b + p + 4);
            if (elem == 0xE00D) { *pos = p + 8; return ST_DONE; }
            return ST_UNSUPPORTED;
        }
        if (explicit_vr) {
            int c = vr_of(b + p + 4);
            if (c == 0) return ST_UNSUPPORTED;
            if (c == 2) {
                if (p + 12 > n) return out_of_bytes(n, size);
                length = rd32(b + p + 8);
                vpos = p + 12;
                long_vr = 1;
                un = b[p + 4] == 'U' && b[p + 5] == 'N';
            } else {
                length = rd16(b + p + 6);
                vpos = p + 8;
            }
        } else {
            length = rd32(b + p + 4);
            vpos = p + 8;
        }
        (void)long_vr;
        if (length == UNDEFINED) {
            *pos = vpos;
            int st = skip_sequence(b, n, size, pos, explicit_vr && !un, depth + 1);
            if (st != ST_DONE) return st;
            continue;
        }
        *pos = vpos + (int64_t)length;
    }
}

static int printable_ascii(const unsigned char *s, Py_ssize_t len) {
    for (Py_ssize_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7E) return 0;
    return 1;
}

static void strip(const unsigned char **s, Py_ssize_t *len) {
    while (*len > 0 && ((*s)[0] == ' ' || (*s)[0] == 0)) { (*s)++; (*len)--; }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == 0)) (*len)--;
}

/* Decode a value when that is unambiguous; otherwise return the raw bytes for header.py. New reference. */
static PyObject *decode(const Field *f, const unsigned char *v, Py_ssize_t len) {
    const unsigned char *s = v;
    Py_ssize_t sl = len;
    switch (f->kind) {
    case K_US:
        if (len < 2) Py_RETURN_NONE;
        return PyLong_FromLong(rd16(v));
    case K_STR:
        strip(&s, &sl);
        if (sl == 0) Py_RETURN_NONE;
        return PyUnicode_DecodeLatin1((const char *)s, sl, NULL);
    case K_TEXT:
        strip(&s, &sl);
        if (sl == 0) Py_RETURN_NONE;
        if (!printable_ascii(s, sl)) break; /* the character set decides: header.py */
        return PyUnicode_DecodeLatin1((const char *)s, sl, NULL);
    case K_MULTI: {
        strip(&s, &sl);
        if (sl == 0) Py_RETURN_NONE;
        if (memchr(s, ' ', (size_t)sl) == NULL) return PyUnicode_DecodeLatin1((const char *)s, sl, NULL);
        if (sl > 1024) break; /* header.py */
        /* each value stripped of spaces and NULs, as tags.convert("multi"): "ISO_IR 192", "a \\ b" -> "a\\b" */
        char tmp[1024];
        Py_ssize_t out = 0, start = 0;
        for (Py_ssize_t i = 0; i <= sl; i++) {
            if (i < sl && s[i] != '\\') continue;
            const unsigned char *part = s + start;
            Py_ssize_t pl = i - start;
            strip(&part, &pl);
            memcpy(tmp + out, part, (size_t)pl);
            out += pl;
            if (i < sl) tmp[out++] = '\\';
            start = i + 1;
        }
        return PyUnicode_DecodeLatin1(tmp, out, NULL);
    }
    case K_INT: {
        strip(&s, &sl);
        if (sl == 0) Py_RETURN_NONE;
        if (sl > 18) break;
        Py_ssize_t i = 0;
        int neg = 0;
        if (s[0] == '+' || s[0] == '-') { neg = s[0] == '-'; i = 1; }
        if (i >= sl) break;
        long long value = 0;
        for (; i < sl; i++) {
            if (s[i] < '0' || s[i] > '9') goto raw;
            value = value * 10 + (s[i] - '0');
        }
        return PyLong_FromLongLong(neg ? -value : value);
    }
    case K_FLOAT: {
        strip(&s, &sl);
        if (sl == 0) Py_RETURN_NONE;
        if (sl > 63) break;
        char tmp[64];
        for (Py_ssize_t i = 0; i < sl; i++) {
            unsigned char c = s[i];
            if (!((c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-' || c == 'e' || c == 'E')) goto raw;
            tmp[i] = (char)c;
        }
        tmp[sl] = 0;
        char *end = NULL;
        double d = PyOS_string_to_double(tmp, &end, NULL);
        if (d == -1.0 && PyErr_Occurred()) { PyErr_Clear(); break; }
        if (end != tmp + sl) break;
        return PyFloat_FromDouble(d);
    }
    default:
        break;
    }
raw:
    return PyBytes_FromStringAndSize((const char *)v, len);
}

/* scan(buf, pos, size, explicit, record) -> (status, pixel_tag_sw or None, value_pos, length)
 * Fills `record` (a dict) with keyword -> value for the configured attributes met on the way. */
static PyObject *py_scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos_arg, size_arg;
    int explicit_vr;
    PyObject *record;
    if (!PyArg_ParseTuple(args, "y*nnpO!", &view, &pos_arg, &size_arg, &explicit_vr, &PyDict_Type, &record)) return NULL;
    const unsigned char *b = (const unsigned char *)view.buf;
    /* positions in 64 bits: a 32-bit length added to a position never wraps, even on 32-bit builds */
    int64_t n = view.len, pos = pos_arg, size = size_arg;
    int status = ST_DONE;
    uint32_t pixel = 0;
    int64_t vpos_out = 0;
    uint32_t length_out = 0;
    if (pos < 0) pos = 0;
    for (;;) {
        if (pos + 8 > n) {
            if (n < size) status = ST_NEED_MORE;
            else status = pos == size ? ST_DONE : ST_TRUNCATED; /* a file without pixel data read to its end */
            break;
        }
        uint32_t tag = rd32(b + pos);
        uint32_t length;
        int64_t vpos;
        int un = 0, is_long = 1;
        if (explicit_vr) {
            int c = vr_of(b + pos + 4);
            if (c == 1) {
                length = rd16(b + pos + 6);
                vpos = pos + 8;
                is_long = 0;
            } else if (c == 2) {
                if (pos + 12 > n) { status = out_of_bytes(n, size); break; }
                length = rd32(b + pos + 8);
                vpos = pos + 12;
                un = b[pos + 4] == 'U' && b[pos + 5] == 'N';
            } else {
                status = ST_UNSUPPORTED;
                break;
            }
        } else {
            length = rd32(b + pos + 4);
            vpos = pos + 8;
        }
        if (is_long && (tag == PIXEL_SW || tag == FLOAT_PIXEL_SW || tag == DOUBLE_PIXEL_SW)) {
            pixel = tag;
            vpos_out = vpos;
            length_out = length;
            break;
        }
        if (is_long && length == UNDEFINED) {
            int64_t seq = vpos;
            status = skip_sequence(b, n, size, &seq, explicit_vr && !un, 1);
            if (status != ST_DONE) break; /* pos stays at the sequence element: where to read more from */
            pos = seq;
            continue;
        }
        int64_t end = vpos + (int64_t)length;
        const Field *f = find_field(tag);
        if (f != NULL) {
            if (end > n) { status = out_of_bytes(n, size); break; }
            PyObject *value = decode(f, b + vpos, (Py_ssize_t)length); /* end <= n: fits */
            if (value == NULL || PyDict_SetItem(record, f->key, value) < 0) {
                Py_XDECREF(value);
                PyBuffer_Release(&view);
                return NULL;
            }
            Py_DECREF(value);
        }
        pos = end;
    }
    PyBuffer_Release(&view);
    if (pixel)
        return Py_BuildValue("(ikLk)", status, (unsigned long)pixel, (long long)vpos_out, (unsigned long)length_out);
    /* ST_NEED_MORE: pos is the start of the top-level element that runs past the buffer */
    return Py_BuildValue("(iOLk)", status, Py_None, (long long)(status == ST_NEED_MORE ? pos : 0), (unsigned long)0);
}

/* configure(fields): fields is a sequence of (swapped tag, kind, keyword). */
static PyObject *py_configure(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "configure() needs a sequence of (tag, kind, keyword)");
    if (seq == NULL) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    if (count > MAX_FIELDS) { Py_DECREF(seq); PyErr_SetString(PyExc_ValueError, "too many fields"); return NULL; }
    for (int i = 0; i < nfields; i++) Py_CLEAR(fields[i].key);
    nfields = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned long tag;
        int kind;
        PyObject *key;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "kiU", &tag, &kind, &key)) { Py_DECREF(seq); return NULL; }
        Field f = {(uint32_t)tag, kind, key};
        Py_INCREF(key);
        PyUnicode_InternInPlace(&f.key);
        int j = nfields++;
        while (j > 0 && fields[j - 1].tag_sw > f.tag_sw) { fields[j] = fields[j - 1]; j--; } /* keep sorted */
        fields[j] = f;
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

/* present(row): (mask, values) of a tuple: mask is bytes with 1 where the item is not None, values the tuple of
 * those items. The writer inserts each row naming only its present columns: binding None costs pysqlite an
 * adapter lookup (~0.3 us each, see database/write.py), the other types bind directly. */
static PyObject *py_present(PyObject *self, PyObject *row) {
    if (!PyTuple_Check(row)) { PyErr_SetString(PyExc_TypeError, "present() needs a tuple"); return NULL; }
    Py_ssize_t n = PyTuple_GET_SIZE(row), kept = 0;
    PyObject *mask = PyBytes_FromStringAndSize(NULL, n);
    if (mask == NULL) return NULL;
    char *m = PyBytes_AS_STRING(mask);
    for (Py_ssize_t i = 0; i < n; i++) {
        m[i] = PyTuple_GET_ITEM(row, i) != Py_None;
        kept += m[i];
    }
    PyObject *values = PyTuple_New(kept);
    if (values == NULL) { Py_DECREF(mask); return NULL; }
    for (Py_ssize_t i = 0, j = 0; i < n; i++) {
        if (m[i]) {
            PyObject *item = PyTuple_GET_ITEM(row, i);
            Py_INCREF(item);
            PyTuple_SET_ITEM(values, j++, item);
        }
    }
    PyObject *out = PyTuple_Pack(2, mask, values);
    Py_DECREF(mask);
    Py_DECREF(values);
    return out;
}

static PyMethodDef methods[] = {
    {"scan", py_scan, METH_VARARGS, "Walk a little-endian data set: (status, pixel tag, value pos, length)."},
    {"configure", py_configure, METH_O, "Set the attributes to keep: ((swapped tag, kind, keyword), ...)."},
    {"present", py_present, METH_O, "(mask bytes, values) of a tuple: 1 where an item is not None, those items."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", "DICOM header walk (see header.py).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__scan(void) {
    static const char *shorts[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN",
                                   "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US", NULL};
    static const char *longs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV", NULL};
    memset(vr_class, 0, sizeof vr_class);
    for (int i = 0; shorts[i]; i++) vr_class[shorts[i][0] - 'A'][shorts[i][1] - 'A'] = 1;
    for (int i = 0; longs[i]; i++) vr_class[longs[i][0] - 'A'][longs[i][1] - 'A'] = 2;
    return PyModule_Create(&module);
}

/* Runs ggml's reference K-quant quantizers on a float32 file.
 *
 * Used by tests/ggml_c_check.py, which compiles it together with ggml's
 * src/ggml-quants.c (no -march flags, like libggml-base, so no FMA):
 *     ggml_c_harness TYPE in.f32 out.bin
 * TYPE is one of Q2_K Q3_K Q4_K Q5_K Q6_K. The input length must be a
 * multiple of 256. The stubs below only satisfy the linker; the reference
 * quantizers never call them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-quants.h"

void ggml_abort(const char *file, int line, const char *fmt, ...) {
    fprintf(stderr, "ggml_abort at %s:%d (%s)\n", file, line, fmt);
    abort();
}
size_t ggml_row_size(enum ggml_type type, int64_t ne) { (void)type; (void)ne; abort(); }
const char *ggml_type_name(enum ggml_type type) { (void)type; return "?"; }
size_t ggml_type_size(enum ggml_type type) { (void)type; abort(); }

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s TYPE in.f32 out.bin\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    int64_t n = bytes / 4;
    float *x = malloc(bytes);
    if (fread(x, 4, n, f) != (size_t)n) { perror("read"); return 1; }
    fclose(f);
    if (n % 256) { fprintf(stderr, "length %ld not a multiple of 256\n", (long)n); return 1; }

    size_t bsize;
    const char *t = argv[1];
    if (!strcmp(t, "Q2_K")) bsize = 84;
    else if (!strcmp(t, "Q3_K")) bsize = 110;
    else if (!strcmp(t, "Q4_K")) bsize = 144;
    else if (!strcmp(t, "Q5_K")) bsize = 176;
    else if (!strcmp(t, "Q6_K")) bsize = 210;
    else { fprintf(stderr, "unknown type %s\n", t); return 2; }
    size_t out_bytes = (size_t)(n / 256) * bsize;
    void *y = calloc(1, out_bytes);
    if (!strcmp(t, "Q2_K")) quantize_row_q2_K_ref(x, y, n);
    if (!strcmp(t, "Q3_K")) quantize_row_q3_K_ref(x, y, n);
    if (!strcmp(t, "Q4_K")) quantize_row_q4_K_ref(x, y, n);
    if (!strcmp(t, "Q5_K")) quantize_row_q5_K_ref(x, y, n);
    if (!strcmp(t, "Q6_K")) quantize_row_q6_K_ref(x, y, n);

    FILE *o = fopen(argv[3], "wb");
    if (!o) { perror(argv[3]); return 1; }
    fwrite(y, 1, out_bytes, o);
    fclose(o);
    free(x);
    free(y);
    return 0;
}

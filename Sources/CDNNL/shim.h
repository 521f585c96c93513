#ifndef CDNNL_SHIM_H
#define CDNNL_SHIM_H
// oneDNN (Debian's libdnnl-dev, 2.x C API; it ships no pkg-config file, hence `link "dnnl"` in the
// module map). The matmul primitives here take every shape and stride at execution
// (DNNL_RUNTIME_DIM_VAL): one primitive serves every token count and every transposition, so a
// training run creates a handful in its first step and none after. Swift cannot import the
// runtime-value macros or fill dnnl's fixed-size dims arrays conveniently; these shims do both.
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stddef.h>

// A matmul primitive over rank-`ndims` tensors (2: one product, 3: a batch of them) whose dims and
// strides are runtime, except the unit stride that says which of A and B is transposed (without it
// oneDNN cannot see a plain layout and picks its reference implementation). `accumulate`: dst += product (a sum post-op); `bias`: a [1, N] f32 bias
// (rank 2 only); `scale`: a runtime output scale (alpha). The scratchpad stays the library's (oneDNN
// keeps it per thread); a user scratchpad makes oneDNN 2.6 fall back to its reference matmul here.
static inline dnnl_status_t petl_matmul_create(dnnl_primitive_t *primitive, dnnl_engine_t engine, int ndims,
                                               int trans_a, int trans_b, dnnl_data_type_t src, dnnl_data_type_t dst,
                                               int accumulate, int bias, int scale) {
  dnnl_dims_t rt, sa, sb, sc;
  for (int i = 0; i < ndims; i++) rt[i] = sa[i] = sb[i] = sc[i] = DNNL_RUNTIME_DIM_VAL;
  // row-major: the last dim is contiguous, or (transposed) the one before it
  sa[ndims - (trans_a ? 2 : 1)] = 1;
  sb[ndims - (trans_b ? 2 : 1)] = 1;
  sc[ndims - 1] = 1;
  dnnl_memory_desc_t a, b, c, bias_md;
  dnnl_status_t s;
  if ((s = dnnl_memory_desc_init_by_strides(&a, ndims, rt, src, sa)) != dnnl_success) return s;
  if ((s = dnnl_memory_desc_init_by_strides(&b, ndims, rt, src, sb)) != dnnl_success) return s;
  if ((s = dnnl_memory_desc_init_by_strides(&c, ndims, rt, dst, sc)) != dnnl_success) return s;
  if (bias) {
    dnnl_dims_t bd = {1, DNNL_RUNTIME_DIM_VAL}, bs = {DNNL_RUNTIME_DIM_VAL, 1};
    if ((s = dnnl_memory_desc_init_by_strides(&bias_md, 2, bd, dnnl_f32, bs)) != dnnl_success) return s;
  }
  dnnl_matmul_desc_t desc;
  if ((s = dnnl_matmul_desc_init(&desc, &a, &b, bias ? &bias_md : NULL, &c)) != dnnl_success) return s;
  dnnl_primitive_attr_t attr;
  if ((s = dnnl_primitive_attr_create(&attr)) != dnnl_success) return s;
  if (scale) dnnl_primitive_attr_set_output_scales(attr, 1, 0, &DNNL_RUNTIME_F32_VAL);
  if (accumulate) {
    dnnl_post_ops_t ops;
    dnnl_post_ops_create(&ops);
    dnnl_post_ops_append_sum(ops, 1.0f);
    dnnl_primitive_attr_set_post_ops(attr, ops);
    dnnl_post_ops_destroy(ops);
  }
  dnnl_primitive_desc_t pd;
  s = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL);
  dnnl_primitive_attr_destroy(attr);
  if (s != dnnl_success) return s;
  s = dnnl_primitive_create(primitive, pd);
  dnnl_primitive_desc_destroy(pd);
  return s;
}

// The implementation oneDNN chose for such a primitive (e.g. "gemm:jit"), for the bench's report.
static inline const char *petl_matmul_impl(dnnl_primitive_t primitive) {
  const_dnnl_primitive_desc_t pd;
  if (dnnl_primitive_get_primitive_desc(primitive, &pd) != dnnl_success) return "?";
  const char *name = NULL;
  if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name) return "?";
  return name;
}

// One tensor argument: dims, strides (elements), type, data.
typedef struct {
  int64_t dims[3];
  int64_t strides[3];
  dnnl_data_type_t type;
  const void *data;
} petl_tensor;

// Runs a primitive from `petl_matmul_create` on the calling thread's stream. The memory objects are
// the only allocations (a few small structs inside oneDNN), freed before returning.
static inline dnnl_status_t petl_matmul_execute(dnnl_primitive_t primitive, dnnl_engine_t engine, dnnl_stream_t stream,
                                                int ndims, const petl_tensor *a, const petl_tensor *b,
                                                const petl_tensor *c, const float *bias, int64_t bias_count,
                                                const float *scale) {
  dnnl_memory_desc_t md[5];
  dnnl_memory_t mem[5] = {NULL, NULL, NULL, NULL, NULL};
  dnnl_exec_arg_t args[5];
  const petl_tensor *t[3] = {a, b, c};
  const int which[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
  int n = 0;
  dnnl_status_t s = dnnl_success;
  for (int i = 0; i < 3 && s == dnnl_success; i++) {
    s = dnnl_memory_desc_init_by_strides(&md[n], ndims, t[i]->dims, t[i]->type, t[i]->strides);
    if (s == dnnl_success) s = dnnl_memory_create(&mem[n], &md[n], engine, (void *)t[i]->data);
    if (s == dnnl_success) { args[n].arg = which[i]; args[n].memory = mem[n]; n++; }
  }
  if (s == dnnl_success && bias) {
    dnnl_dims_t bd = {1, bias_count}, bs = {bias_count, 1};
    s = dnnl_memory_desc_init_by_strides(&md[n], 2, bd, dnnl_f32, bs);
    if (s == dnnl_success) s = dnnl_memory_create(&mem[n], &md[n], engine, (void *)bias);
    if (s == dnnl_success) { args[n].arg = DNNL_ARG_BIAS; args[n].memory = mem[n]; n++; }
  }
  if (s == dnnl_success && scale) {
    dnnl_dims_t sd = {1}, ss = {1};
    s = dnnl_memory_desc_init_by_strides(&md[n], 1, sd, dnnl_f32, ss);
    if (s == dnnl_success) s = dnnl_memory_create(&mem[n], &md[n], engine, (void *)scale);
    if (s == dnnl_success) { args[n].arg = DNNL_ARG_ATTR_OUTPUT_SCALES; args[n].memory = mem[n]; n++; }
  }
  if (s == dnnl_success) s = dnnl_primitive_execute(primitive, stream, n, args);
  for (int i = 0; i < n; i++) dnnl_memory_destroy(mem[i]);
  if (s != dnnl_success && n < 5 && mem[n]) dnnl_memory_destroy(mem[n]);
  return s;
}

static inline unsigned petl_dnnl_cpu_runtime(void) { return dnnl_version()->cpu_runtime; }
static inline unsigned petl_dnnl_runtime_omp(void) { return DNNL_RUNTIME_OMP; }
static inline unsigned petl_dnnl_runtime_seq(void) { return DNNL_RUNTIME_SEQ; }
#endif

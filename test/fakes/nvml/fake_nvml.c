/*
 * fake_nvml.c — an ABI-compatible stand-in for libnvidia-ml.so.1 that replays a recorded trace.
 *
 * Exports the NVML entry points jouleflow uses, with the real signatures and struct layouts
 * (nvml.h), so the exporter's koffi binding runs unchanged against it in CI, where no GPU exists.
 *
 * Environment (read at nvmlInit when the reference count goes 0 -> 1):
 *   JOULEFLOW_FAKE_NVML_TRACE      JSON trace: { "samples": [...] } for one GPU, or
 *                                  { "gpus": [ { "name", "uuid", "samples": [...] }, ... ] }.
 *                                  Sample: t (s), power_mw, energy_mj, optional util_gpu, util_mem,
 *                                  temp_c, procs: [{ pid, used_mem|usedMem|used_gpu_memory,
 *                                  sm_util|sm|smUtil, mem_util }]. Unset: nvmlInit fails with
 *                                  NVML_ERROR_DRIVER_NOT_LOADED.
 *   JOULEFLOW_FAKE_NVML_SPEED      replay speed (default 1).
 *   JOULEFLOW_FAKE_NVML_EPOCH      "init" (default): replay time 0 is the nvmlInit call;
 *                                  "first-read": time 0 is the first reading query (energy, power,
 *                                  utilisation, temperature, processes), so a test's first sample
 *                                  is the trace's first sample whatever the start-up latency.
 *                                  A number: replay time 0 is that Unix time (seconds), so that
 *                                  several processes (the exporter and a checker) replay in step.
 *   JOULEFLOW_FAKE_NVML_GPUS       expose N devices, cycling over the trace's GPUs (default: as many
 *                                  as the trace has).
 *   JOULEFLOW_FAKE_NVML_FAULT_GPU  comma-separated device indices the fault switches below apply
 *                                  to (default: every device).
 *   JOULEFLOW_FAKE_NVML_NO_ENERGY=1  nvmlDeviceGetTotalEnergyConsumption -> NOT_SUPPORTED.
 *   JOULEFLOW_FAKE_NVML_RESET_AT=s   from replay offset s the energy counter restarts from 0.
 *   JOULEFLOW_FAKE_NVML_LOST_AT=s    from replay offset s every device query -> GPU_IS_LOST.
 *   JOULEFLOW_FAKE_NVML_HANG_MS=ms   every call sleeps that long first (slow driver).
 *   JOULEFLOW_FAKE_NVML_MIG=1        MIG mode on: utilisation and per-process utilisation ->
 *                                    NOT_SUPPORTED, processes carry GPU/compute instance ids.
 *   JOULEFLOW_FAKE_NVML_POWER_LIMIT_MW=mW  enforced power limit (as set by `nvidia-smi -pl`); the
 *                                    trace's power_limit_mw (default 700000) stays the maximum
 *                                    settable limit (nvmlDeviceGetPowerManagementLimitConstraints).
 *
 * Replay: a query at replay offset x (seconds since the epoch, times the speed) answers with the
 * last sample whose offset from the trace's first sample is <= x; after the end the last sample
 * holds. Thread-safe (one mutex; the hang sleeps outside it), as callers use worker threads.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API __attribute__((visibility("default")))

typedef int nvmlReturn_t;
enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_UNKNOWN = 999,
};

/* ---- nvml.h structures (same layout) ---- */
typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

typedef struct {
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;

typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_v3_t;

typedef struct {
  unsigned int pid;
  unsigned long long timeStamp;
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t layout");
_Static_assert(sizeof(nvmlProcessInfo_v3_t) == 24, "nvmlProcessInfo_v3_t layout");
_Static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "nvmlProcessUtilizationSample_t layout");

/* ---- a small JSON reader (DOM) ---- */
typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;
typedef struct jval {
  jtype type;
  double num;
  char *str;
  struct jval *items; /* array elements or object values */
  char **keys;        /* object keys */
  size_t n;
} jval;

typedef struct {
  const char *p, *end;
  const char *err;
  int depth;
} jparser;

static void jfree(jval *v) {
  if (!v) return;
  free(v->str);
  for (size_t i = 0; i < v->n; i++) {
    jfree(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  memset(v, 0, sizeof *v);
}

static void jws(jparser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int jparse_value(jparser *ps, jval *out);

static void put_utf8(char **o, unsigned cp) {
  char *q = *o;
  if (cp < 0x80) *q++ = (char)cp;
  else if (cp < 0x800) {
    *q++ = (char)(0xC0 | (cp >> 6));
    *q++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *q++ = (char)(0xE0 | (cp >> 12));
    *q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *q++ = (char)(0x80 | (cp & 0x3F));
  }
  *o = q;
}

static int jparse_string(jparser *ps, char **out) {
  if (ps->p >= ps->end || *ps->p != '"') return ps->err = "expected string", -1;
  ps->p++;
  const char *start = ps->p;
  size_t cap = 0;
  while (ps->p < ps->end && *ps->p != '"') {
    if (*ps->p == '\\') ps->p++;
    ps->p++;
    cap++;
  }
  if (ps->p >= ps->end) return ps->err = "unterminated string", -1;
  char *buf = malloc(cap * 3 + 1), *o = buf;
  if (!buf) return ps->err = "out of memory", -1;
  for (const char *s = start; s < ps->p; s++) {
    if (*s != '\\') {
      *o++ = *s;
      continue;
    }
    s++;
    switch (*s) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'u': {
        unsigned cp = 0;
        int k = 0;
        for (; k < 4 && s + 1 < ps->p && isxdigit((unsigned char)s[1]); k++, s++)
          cp = cp * 16 + (unsigned)(isdigit((unsigned char)*(s + 1)) ? *(s + 1) - '0' : (tolower((unsigned char)*(s + 1)) - 'a' + 10));
        if (k != 4) {
          free(buf);
          return ps->err = "bad \\u escape", -1;
        }
        put_utf8(&o, (cp >= 0xD800 && cp <= 0xDFFF) ? '?' : cp);
        break;
      }
      default: *o++ = *s; break; /* \" \\ \/ */
    }
  }
  *o = 0;
  ps->p++;
  *out = buf;
  return 0;
}

static int jpush(jval *v, size_t *cap, int with_keys) {
  if (v->n < *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 8;
  jval *ni = realloc(v->items, nc * sizeof *ni);
  if (!ni) return -1;
  v->items = ni;
  if (with_keys) {
    char **nk = realloc(v->keys, nc * sizeof *nk);
    if (!nk) return -1;
    v->keys = nk;
  }
  *cap = nc;
  return 0;
}

static int jparse_value(jparser *ps, jval *out) {
  memset(out, 0, sizeof *out);
  jws(ps);
  if (ps->p >= ps->end) return ps->err = "unexpected end", -1;
  if (++ps->depth > 64) return ps->err = "nesting too deep", -1;
  int rc = 0;
  char c = *ps->p;
  if (c == '{' || c == '[') {
    int obj = c == '{';
    out->type = obj ? J_OBJ : J_ARR;
    ps->p++;
    size_t cap = 0;
    jws(ps);
    if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
      ps->p++;
    } else {
      for (;;) {
        if (jpush(out, &cap, obj)) {
          ps->err = "out of memory";
          rc = -1;
          break;
        }
        char *key = NULL;
        if (obj) {
          jws(ps);
          if (jparse_string(ps, &key)) {
            rc = -1;
            break;
          }
          jws(ps);
          if (ps->p >= ps->end || *ps->p != ':') {
            free(key);
            ps->err = "expected ':'";
            rc = -1;
            break;
          }
          ps->p++;
          out->keys[out->n] = key;
        }
        if (jparse_value(ps, &out->items[out->n])) {
          free(key);
          rc = -1;
          break;
        }
        out->n++;
        jws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
          ps->p++;
          continue;
        }
        if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) {
          ps->p++;
          break;
        }
        ps->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
        rc = -1;
        break;
      }
    }
  } else if (c == '"') {
    out->type = J_STR;
    rc = jparse_string(ps, &out->str);
  } else if (c == 't' && ps->end - ps->p >= 4 && !strncmp(ps->p, "true", 4)) {
    out->type = J_BOOL, out->num = 1, ps->p += 4;
  } else if (c == 'f' && ps->end - ps->p >= 5 && !strncmp(ps->p, "false", 5)) {
    out->type = J_BOOL, ps->p += 5;
  } else if (c == 'n' && ps->end - ps->p >= 4 && !strncmp(ps->p, "null", 4)) {
    out->type = J_NULL, ps->p += 4;
  } else if (c == '-' || isdigit((unsigned char)c)) {
    char tmp[64];
    size_t len = 0;
    while (ps->p + len < ps->end && len < sizeof tmp - 1 && strchr("+-0123456789.eE", ps->p[len])) len++;
    memcpy(tmp, ps->p, len);
    tmp[len] = 0;
    char *e;
    out->type = J_NUM;
    out->num = strtod(tmp, &e);
    if (e == tmp) ps->err = "bad number", rc = -1;
    ps->p += len;
  } else {
    ps->err = "unexpected character";
    rc = -1;
  }
  ps->depth--;
  if (rc) jfree(out);
  return rc;
}

static const jval *jget(const jval *o, const char *key) {
  if (!o || o->type != J_OBJ) return NULL;
  for (size_t i = 0; i < o->n; i++)
    if (!strcmp(o->keys[i], key)) return &o->items[i];
  return NULL;
}

static const jval *jget_any(const jval *o, const char *const *keys) {
  for (; *keys; keys++) {
    const jval *v = jget(o, *keys);
    if (v && v->type != J_NULL) return v;
  }
  return NULL;
}

static double jnum(const jval *v, double dflt) {
  if (!v) return dflt;
  if (v->type == J_NUM || v->type == J_BOOL) return v->num;
  if (v->type == J_STR && v->str[0]) { /* energy_mj is a string in node-nvml-probe.json */
    char *e;
    double d = strtod(v->str, &e);
    return *e ? dflt : d;
  }
  return dflt;
}

/* ---- the trace ---- */
typedef struct {
  unsigned int pid;
  unsigned long long used_mem;
  int sm_util; /* -1: not recorded */
  int mem_util;
} fproc;

typedef struct {
  double off; /* seconds since the GPU's first sample */
  unsigned int power_mw;
  double energy_mj; /* < 0: not recorded */
  unsigned int util_gpu, util_mem, temp_c;
  size_t nprocs;
  fproc *procs;
} fsample;

typedef struct {
  char name[96], uuid[96], bus[32];
  unsigned int limit_mw;
  int has_energy;
  size_t n;
  fsample *s;
} ftrace;

typedef struct nvmlDevice_st {
  unsigned int index;
  const ftrace *tr;
  char uuid[96], bus[32];
  int faulty;
  /* set once per ramp of the reset switch */
  double reset_base_mj;
} fdevice;

#define MAX_DEVICES 64

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_refs;
static ftrace *g_traces;
static size_t g_ntraces;
static fdevice g_devs[MAX_DEVICES];
static unsigned int g_ndev;
static double g_speed = 1;
static int g_epoch_first_read;
static double g_epoch_abs; /* > 0: replay time 0 is this Unix time */
static int g_started;
static struct timespec g_epoch_mono;
static double g_epoch_real_us;
static int g_no_energy, g_mig;
static double g_reset_at = -1, g_lost_at = -1;
static long g_hang_ms;
static double g_power_limit_mw; /* > 0: enforced limit override */

static double env_num(const char *name, double dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *e;
  double d = strtod(v, &e);
  return *e ? dflt : d;
}

static void free_traces(void) {
  for (size_t i = 0; i < g_ntraces; i++) {
    for (size_t k = 0; k < g_traces[i].n; k++) free(g_traces[i].s[k].procs);
    free(g_traces[i].s);
  }
  free(g_traces);
  g_traces = NULL;
  g_ntraces = 0;
  g_ndev = 0;
}

static void copy_str(char *dst, size_t cap, const jval *v, const char *dflt) {
  snprintf(dst, cap, "%s", v && v->type == J_STR ? v->str : dflt);
}

static int load_gpu(ftrace *tr, const jval *g, size_t idx) {
  static const char *const k_mem[] = {"used_mem", "usedMem", "used_gpu_memory", "usedGpuMemory", NULL};
  static const char *const k_sm[] = {"sm_util", "sm", "smUtil", NULL};
  static const char *const k_mu[] = {"mem_util", "mem", "memUtil", NULL};
  char dflt_uuid[64];
  snprintf(dflt_uuid, sizeof dflt_uuid, "GPU-fa4e0000-0000-0000-0000-%012zx", idx);
  copy_str(tr->name, sizeof tr->name, jget(g, "name"), "NVIDIA Fake GPU");
  copy_str(tr->uuid, sizeof tr->uuid, jget(g, "uuid"), dflt_uuid);
  copy_str(tr->bus, sizeof tr->bus, jget(g, "pci_bus_id"), "");
  tr->limit_mw = (unsigned int)jnum(jget(g, "power_limit_mw"), 700000);
  const jval *ss = jget(g, "samples");
  if (!ss || ss->type != J_ARR || ss->n == 0) return -1;
  tr->s = calloc(ss->n, sizeof *tr->s);
  if (!tr->s) return -1;
  tr->n = ss->n;
  double t0 = jnum(jget(&ss->items[0], "t"), 0);
  for (size_t i = 0; i < ss->n; i++) {
    const jval *x = &ss->items[i];
    fsample *s = &tr->s[i];
    s->off = jnum(jget(x, "t"), t0) - t0;
    if (i > 0 && s->off < tr->s[i - 1].off) s->off = tr->s[i - 1].off; /* keep it monotonic */
    s->power_mw = (unsigned int)jnum(jget(x, "power_mw"), 0);
    s->energy_mj = jnum(jget(x, "energy_mj"), -1);
    if (s->energy_mj >= 0) tr->has_energy = 1;
    s->util_gpu = (unsigned int)jnum(jget(x, "util_gpu"), 0);
    s->util_mem = (unsigned int)jnum(jget(x, "util_mem"), 0);
    s->temp_c = (unsigned int)jnum(jget(x, "temp_c"), 40);
    const jval *ps = jget(x, "procs");
    if (ps && ps->type == J_ARR && ps->n > 0) {
      s->procs = calloc(ps->n, sizeof *s->procs);
      if (!s->procs) return -1;
      s->nprocs = ps->n;
      for (size_t k = 0; k < ps->n; k++) {
        const jval *p = &ps->items[k];
        s->procs[k].pid = (unsigned int)jnum(jget(p, "pid"), 0);
        s->procs[k].used_mem = (unsigned long long)jnum(jget_any(p, k_mem), 0);
        s->procs[k].sm_util = (int)jnum(jget_any(p, k_sm), -1);
        s->procs[k].mem_util = (int)jnum(jget_any(p, k_mu), 0);
      }
    }
  }
  /* Samples without an energy reading carry the previous one forward. */
  double last = -1;
  for (size_t i = 0; i < tr->n; i++) {
    if (tr->s[i].energy_mj < 0) tr->s[i].energy_mj = last < 0 ? 0 : last;
    last = tr->s[i].energy_mj;
  }
  return 0;
}

static int load_trace(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "fake-nvml: cannot open trace %s: %s\n", path, strerror(errno));
    return -1;
  }
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(len > 0 ? (size_t)len : 1);
  if (!buf || len < 0 || (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)) {
    fclose(f);
    free(buf);
    fprintf(stderr, "fake-nvml: cannot read trace %s\n", path);
    return -1;
  }
  fclose(f);
  jparser ps = {buf, buf + len, NULL, 0};
  jval root;
  int rc = jparse_value(&ps, &root);
  if (rc == 0) {
    jws(&ps);
    if (ps.p < ps.end) {
      jfree(&root);
      ps.err = "unexpected text after the JSON value";
      rc = -1;
    }
  }
  free(buf);
  if (rc) {
    fprintf(stderr, "fake-nvml: trace %s is not valid JSON: %s\n", path, ps.err);
    return -1;
  }
  const jval *gpus = jget(&root, "gpus");
  size_t n = gpus && gpus->type == J_ARR ? gpus->n : 1;
  g_traces = calloc(n ? n : 1, sizeof *g_traces);
  g_ntraces = n;
  rc = g_traces && n > 0 ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < n; i++) rc = load_gpu(&g_traces[i], gpus && gpus->type == J_ARR ? &gpus->items[i] : &root, i);
  jfree(&root);
  if (rc) {
    fprintf(stderr, "fake-nvml: trace %s has no usable samples\n", path);
    free_traces();
  }
  return rc;
}

static int fault_applies(unsigned int idx) {
  const char *v = getenv("JOULEFLOW_FAKE_NVML_FAULT_GPU");
  if (!v || !*v) return 1;
  char *copy = strdup(v), *save = NULL;
  int hit = 0;
  for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
    if (strtoul(tok, NULL, 10) == idx) hit = 1;
  free(copy);
  return hit;
}

static double now_real_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void start_clock(void) {
  clock_gettime(CLOCK_MONOTONIC, &g_epoch_mono);
  g_epoch_real_us = now_real_us();
  g_started = 1;
}

/* Replay offset in trace seconds; starts the clock on the first reading query in first-read mode. */
static double replay_offset(int reading) {
  if (!g_started) {
    if (!reading) return 0;
    start_clock();
  }
  if (g_epoch_abs > 0) {
    double el = now_real_us() / 1e6 - g_epoch_abs;
    return el > 0 ? el * g_speed : 0;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double el = (double)(ts.tv_sec - g_epoch_mono.tv_sec) + (double)(ts.tv_nsec - g_epoch_mono.tv_nsec) / 1e9;
  return el * g_speed;
}

static size_t index_at(const ftrace *tr, double off) {
  size_t lo = 0, hi = tr->n; /* last i with s[i].off <= off */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (tr->s[mid].off <= off) lo = mid;
    else hi = mid;
  }
  return lo;
}

static void hang(void) {
  long ms = __atomic_load_n(&g_hang_ms, __ATOMIC_RELAXED);
  if (ms <= 0) return;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/* Common entry for a device query: hang, lock, validate. On success the mutex is held. */
static nvmlReturn_t enter(nvmlDevice_t dev, int reading, double *off, const fsample **s) {
  hang();
  pthread_mutex_lock(&g_mu);
  if (g_refs == 0) {
    pthread_mutex_unlock(&g_mu);
    return NVML_ERROR_UNINITIALIZED;
  }
  if (dev < g_devs || dev >= g_devs + g_ndev) {
    pthread_mutex_unlock(&g_mu);
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  double o = replay_offset(reading);
  if (dev->faulty && g_lost_at >= 0 && g_started && o >= g_lost_at) {
    pthread_mutex_unlock(&g_mu);
    return NVML_ERROR_GPU_IS_LOST;
  }
  if (off) *off = o;
  if (s) *s = &dev->tr->s[index_at(dev->tr, o)];
  return NVML_SUCCESS;
}

static nvmlReturn_t leave(nvmlReturn_t rc) {
  pthread_mutex_unlock(&g_mu);
  return rc;
}

/* ---- initialisation ---- */
API nvmlReturn_t nvmlInit_v2(void) {
  __atomic_store_n(&g_hang_ms, (long)env_num("JOULEFLOW_FAKE_NVML_HANG_MS", 0), __ATOMIC_RELAXED);
  hang();
  pthread_mutex_lock(&g_mu);
  if (g_refs > 0) {
    g_refs++;
    return leave(NVML_SUCCESS);
  }
  const char *path = getenv("JOULEFLOW_FAKE_NVML_TRACE");
  if (!path || !*path) return leave(NVML_ERROR_DRIVER_NOT_LOADED); /* as on a host without the driver */
  if (load_trace(path)) return leave(NVML_ERROR_UNKNOWN);
  g_speed = env_num("JOULEFLOW_FAKE_NVML_SPEED", 1);
  if (!(g_speed > 0)) g_speed = 1;
  const char *ep = getenv("JOULEFLOW_FAKE_NVML_EPOCH");
  g_epoch_first_read = ep && !strcmp(ep, "first-read");
  g_epoch_abs = env_num("JOULEFLOW_FAKE_NVML_EPOCH", 0);
  g_no_energy = env_num("JOULEFLOW_FAKE_NVML_NO_ENERGY", 0) != 0;
  g_mig = env_num("JOULEFLOW_FAKE_NVML_MIG", 0) != 0;
  g_reset_at = env_num("JOULEFLOW_FAKE_NVML_RESET_AT", -1);
  g_lost_at = env_num("JOULEFLOW_FAKE_NVML_LOST_AT", -1);
  g_power_limit_mw = env_num("JOULEFLOW_FAKE_NVML_POWER_LIMIT_MW", 0);
  double ngpus = env_num("JOULEFLOW_FAKE_NVML_GPUS", (double)g_ntraces);
  g_ndev = ngpus < 1 ? 1 : ngpus > MAX_DEVICES ? MAX_DEVICES : (unsigned int)ngpus;
  for (unsigned int i = 0; i < g_ndev; i++) {
    fdevice *d = &g_devs[i];
    memset(d, 0, sizeof *d);
    d->index = i;
    d->tr = &g_traces[i % g_ntraces];
    if (i < g_ntraces) snprintf(d->uuid, sizeof d->uuid, "%s", d->tr->uuid);
    else snprintf(d->uuid, sizeof d->uuid, "%.*s%04x", (int)(strlen(d->tr->uuid) > 4 ? strlen(d->tr->uuid) - 4 : 0), d->tr->uuid, i);
    if (d->tr->bus[0] && i < g_ntraces) snprintf(d->bus, sizeof d->bus, "%s", d->tr->bus);
    else snprintf(d->bus, sizeof d->bus, "00000000:%02X:00.0", 0x18 + i);
    d->faulty = fault_applies(i);
    d->reset_base_mj = d->tr->s[index_at(d->tr, g_reset_at)].energy_mj;
  }
  g_started = 0;
  if (g_epoch_abs > 0) {
    start_clock();
    g_epoch_real_us = g_epoch_abs * 1e6;
  } else if (!g_epoch_first_read) {
    start_clock();
  }
  g_refs = 1;
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }
API nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
  (void)flags;
  return nvmlInit_v2();
}

API nvmlReturn_t nvmlShutdown(void) {
  hang();
  pthread_mutex_lock(&g_mu);
  if (g_refs == 0) return leave(NVML_ERROR_UNINITIALIZED);
  if (--g_refs == 0) free_traces();
  return leave(NVML_SUCCESS);
}

API const char *nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
  }
}

API nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
  hang();
  if (!version) return NVML_ERROR_INVALID_ARGUMENT;
  const char *v = "580.159.04-fake";
  if (length < strlen(v) + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  strcpy(version, v);
  return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
  hang();
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  pthread_mutex_lock(&g_mu);
  if (g_refs == 0) return leave(NVML_ERROR_UNINITIALIZED);
  *count = g_ndev;
  return leave(NVML_SUCCESS);
}
API nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
  hang();
  if (!device) return NVML_ERROR_INVALID_ARGUMENT;
  pthread_mutex_lock(&g_mu);
  if (g_refs == 0) return leave(NVML_ERROR_UNINITIALIZED);
  if (index >= g_ndev) return leave(NVML_ERROR_INVALID_ARGUMENT);
  *device = &g_devs[index];
  return leave(NVML_SUCCESS);
}
API nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
  return nvmlDeviceGetHandleByIndex_v2(index, device);
}

static nvmlReturn_t put_string(const char *src, char *dst, unsigned int length) {
  if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
  if (length < strlen(src) + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  strcpy(dst, src);
  return NVML_SUCCESS;
}

/* ---- identity ---- */
API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int length) {
  nvmlReturn_t rc = enter(dev, 0, NULL, NULL);
  if (rc) return rc;
  return leave(put_string(dev->tr->name, name, length));
}

API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int length) {
  nvmlReturn_t rc = enter(dev, 0, NULL, NULL);
  if (rc) return rc;
  return leave(put_string(dev->uuid, uuid, length));
}

API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t dev, unsigned int *index) {
  nvmlReturn_t rc = enter(dev, 0, NULL, NULL);
  if (rc) return rc;
  if (!index) return leave(NVML_ERROR_INVALID_ARGUMENT);
  *index = dev->index;
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t dev, nvmlPciInfo_t *pci) {
  nvmlReturn_t rc = enter(dev, 0, NULL, NULL);
  if (rc) return rc;
  if (!pci) return leave(NVML_ERROR_INVALID_ARGUMENT);
  memset(pci, 0, sizeof *pci);
  unsigned int dom = 0, bus = 0, d = 0, fn = 0;
  sscanf(dev->bus, "%x:%x:%x.%x", &dom, &bus, &d, &fn);
  pci->domain = dom;
  pci->bus = bus;
  pci->device = d;
  pci->pciDeviceId = 0x233510DE; /* H200 */
  pci->pciSubSystemId = 0x18BE10DE;
  snprintf(pci->busId, sizeof pci->busId, "%s", dev->bus);
  snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.%X", dom & 0xFFFF, bus, d, fn);
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t dev, unsigned int *limit) {
  nvmlReturn_t rc = enter(dev, 0, NULL, NULL);
  if (rc) return rc;
  if (!limit) return leave(NVML_ERROR_INVALID_ARGUMENT);
  *limit = dev->faulty && g_power_limit_mw > 0 ? (unsigned int)g_power_limit_mw : dev->tr->limit_mw;
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t dev, unsigned int *minLimit, unsigned int *maxLimit) {
  nvmlReturn_t rc = enter(dev, 0, NULL, NULL);
  if (rc) return rc;
  if (!minLimit || !maxLimit) return leave(NVML_ERROR_INVALID_ARGUMENT);
  *minLimit = dev->tr->limit_mw / 3;
  *maxLimit = dev->tr->limit_mw;
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t dev, unsigned int *current, unsigned int *pending) {
  nvmlReturn_t rc = enter(dev, 0, NULL, NULL);
  if (rc) return rc;
  if (!current || !pending) return leave(NVML_ERROR_INVALID_ARGUMENT);
  *current = *pending = g_mig ? 1 : 0;
  return leave(NVML_SUCCESS);
}

/* ---- readings ---- */
API nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t dev, unsigned long long *energy) {
  double off;
  const fsample *s;
  nvmlReturn_t rc = enter(dev, 1, &off, &s);
  if (rc) return rc;
  if (!energy) return leave(NVML_ERROR_INVALID_ARGUMENT);
  if ((dev->faulty && g_no_energy) || !dev->tr->has_energy) return leave(NVML_ERROR_NOT_SUPPORTED);
  double mj = s->energy_mj;
  if (dev->faulty && g_reset_at >= 0 && off >= g_reset_at) mj -= dev->reset_base_mj;
  *energy = (unsigned long long)(mj < 0 ? 0 : mj + 0.5);
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *power) {
  const fsample *s;
  nvmlReturn_t rc = enter(dev, 1, NULL, &s);
  if (rc) return rc;
  if (!power) return leave(NVML_ERROR_INVALID_ARGUMENT);
  *power = s->power_mw;
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *util) {
  const fsample *s;
  nvmlReturn_t rc = enter(dev, 1, NULL, &s);
  if (rc) return rc;
  if (!util) return leave(NVML_ERROR_INVALID_ARGUMENT);
  if (g_mig) return leave(NVML_ERROR_NOT_SUPPORTED);
  util->gpu = s->util_gpu;
  util->memory = s->util_mem;
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *temp) {
  const fsample *s;
  nvmlReturn_t rc = enter(dev, 1, NULL, &s);
  if (rc) return rc;
  if (!temp || sensor != 0) return leave(NVML_ERROR_INVALID_ARGUMENT);
  *temp = s->temp_c;
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t dev, unsigned int *count, nvmlProcessInfo_v3_t *infos) {
  const fsample *s;
  nvmlReturn_t rc = enter(dev, 1, NULL, &s);
  if (rc) return rc;
  if (!count) return leave(NVML_ERROR_INVALID_ARGUMENT);
  unsigned int n = (unsigned int)s->nprocs;
  if (*count < n || (n > 0 && !infos)) {
    *count = n;
    return leave(NVML_ERROR_INSUFFICIENT_SIZE);
  }
  for (unsigned int k = 0; k < n; k++) {
    infos[k].pid = s->procs[k].pid;
    infos[k].usedGpuMemory = s->procs[k].used_mem;
    infos[k].gpuInstanceId = g_mig ? 1 + k % 2 : 0xFFFFFFFFu;
    infos[k].computeInstanceId = g_mig ? 0 : 0xFFFFFFFFu;
  }
  *count = n;
  return leave(NVML_SUCCESS);
}

API nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t dev, nvmlProcessUtilizationSample_t *samples, unsigned int *count,
                                                 unsigned long long lastSeen) {
  double off;
  const fsample *s;
  nvmlReturn_t rc = enter(dev, 1, &off, &s);
  if (rc) return rc;
  if (!count) return leave(NVML_ERROR_INVALID_ARGUMENT);
  if (g_mig) return leave(NVML_ERROR_NOT_SUPPORTED);
  /* The sample's own time: when the replay reached it. */
  unsigned long long ts = (unsigned long long)(g_epoch_real_us + s->off / g_speed * 1e6);
  unsigned int n = 0;
  for (size_t k = 0; k < s->nprocs; k++)
    if (s->procs[k].sm_util >= 0) n++;
  if (n == 0 || ts <= lastSeen) return leave(NVML_ERROR_NOT_FOUND);
  if (!samples || *count < n) {
    *count = n;
    return leave(NVML_ERROR_INSUFFICIENT_SIZE);
  }
  unsigned int j = 0;
  for (size_t k = 0; k < s->nprocs; k++) {
    if (s->procs[k].sm_util < 0) continue;
    samples[j].pid = s->procs[k].pid;
    samples[j].timeStamp = ts;
    samples[j].smUtil = (unsigned int)s->procs[k].sm_util;
    samples[j].memUtil = (unsigned int)s->procs[k].mem_util;
    samples[j].encUtil = 0;
    samples[j].decUtil = 0;
    j++;
  }
  *count = n;
  (void)off;
  return leave(NVML_SUCCESS);
}

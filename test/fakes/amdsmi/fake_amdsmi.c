/*
 * fake_amdsmi.c — an ABI-compatible stand-in for libamd_smi.so that replays a JSON trace.
 *
 * Exports the amdsmi entry points jouleflow's AMD source uses, with the signatures and struct
 * layouts of the public amdsmi.h (ROCm amdsmi, AMDSMI_LIB_VERSION_MAJOR 26: AMDSMI_MAX_STRING_LENGTH
 * 256), checked by _Static_assert, so the exporter's koffi binding runs unchanged in CI.
 * No AMD recording exists here: the traces (test/amdsmi/traces/) are built from the shared NVIDIA
 * H200 recordings' power and energy series (see make-traces.mjs).
 *
 * Environment (read at amdsmi_init when the reference count goes 0 -> 1):
 *   JOULEFLOW_FAKE_AMDSMI_TRACE      JSON trace: { "counter_resolution_uj": r, "gpus": [ { "market_name",
 *                                    "uuid", "power_cap_w", "samples": [ [t, power_w, energy_acc,
 *                                    [[pid, vram_bytes, gfx_ns], ...]], ... ] } ] }. Unset:
 *                                    amdsmi_init fails with AMDSMI_STATUS_DRIVER_NOT_LOADED.
 *   JOULEFLOW_FAKE_AMDSMI_SPEED      replay speed (default 1).
 *   JOULEFLOW_FAKE_AMDSMI_EPOCH      "init" (default) or "first-read": replay time 0 is amdsmi_init,
 *                                    or the first energy/power/process query.
 *   JOULEFLOW_FAKE_AMDSMI_GPUS       expose N GPUs (one socket each, as on MI300X), cycling over the
 *                                    trace's GPUs.
 *   JOULEFLOW_FAKE_AMDSMI_FAULT_GPU  comma-separated GPU indices the faults apply to (default all).
 *   JOULEFLOW_FAKE_AMDSMI_NO_ENERGY=1  amdsmi_get_energy_count -> AMDSMI_STATUS_NOT_SUPPORTED.
 *   JOULEFLOW_FAKE_AMDSMI_RESET_AT=s   from replay offset s the energy accumulator restarts from 0.
 *   JOULEFLOW_FAKE_AMDSMI_LOST_AT=s    from replay offset s every GPU query -> AMDSMI_STATUS_NOT_FOUND.
 *   JOULEFLOW_FAKE_AMDSMI_HANG_MS=ms   every GPU query sleeps that long first (a stuck driver).
 *
 * Replay: a query at offset x answers with the last sample whose t (relative to the first) is <= x;
 * after the end the last sample holds. One mutex; the hang sleeps outside it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API __attribute__((visibility("default")))

/* ---- amdsmi.h (the parts used) ---- */
#define AMDSMI_MAX_STRING_LENGTH 256
#define AMDSMI_GPU_UUID_SIZE 38
#define AMDSMI_INIT_AMD_GPUS (1 << 1)
typedef void *amdsmi_processor_handle;
typedef void *amdsmi_socket_handle;
typedef enum { AMDSMI_PROCESSOR_TYPE_UNKNOWN = 0, AMDSMI_PROCESSOR_TYPE_AMD_GPU } processor_type_t;
typedef enum {
  AMDSMI_STATUS_SUCCESS = 0,
  AMDSMI_STATUS_INVAL = 1,
  AMDSMI_STATUS_NOT_SUPPORTED = 2,
  AMDSMI_STATUS_FILE_ERROR = 14,
  AMDSMI_STATUS_OUT_OF_RESOURCES = 15,
  AMDSMI_STATUS_INIT_ERROR = 18,
  AMDSMI_STATUS_NOT_FOUND = 31,
  AMDSMI_STATUS_NOT_INIT = 32,
  AMDSMI_STATUS_DRIVER_NOT_LOADED = 34,
  AMDSMI_STATUS_UNKNOWN_ERROR = 0xFFFFFFFF
} amdsmi_status_t;

typedef struct {
  uint64_t power_cap, default_power_cap, dpm_cap, min_power_cap, max_power_cap;
  uint64_t reserved[3];
} amdsmi_power_cap_info_t;

typedef struct {
  char market_name[AMDSMI_MAX_STRING_LENGTH];
  uint32_t vendor_id;
  char vendor_name[AMDSMI_MAX_STRING_LENGTH];
  uint32_t subvendor_id;
  uint64_t device_id;
  uint32_t rev_id;
  char asic_serial[AMDSMI_MAX_STRING_LENGTH];
  uint32_t oam_id;
  uint32_t num_of_compute_units;
  uint64_t target_graphics_version;
  uint32_t subsystem_id;
  uint32_t reserved[21];
} amdsmi_asic_info_t;

typedef struct {
  uint64_t socket_power;
  uint32_t current_socket_power;
  uint32_t average_socket_power;
  uint64_t gfx_voltage, soc_voltage, mem_voltage;
  uint32_t power_limit;
  uint64_t reserved[18];
} amdsmi_power_info_t;

typedef struct {
  char name[AMDSMI_MAX_STRING_LENGTH];
  uint32_t pid;
  uint64_t mem;
  struct {
    uint64_t gfx, enc;
    uint32_t reserved[12];
  } engine_usage;
  struct {
    uint64_t gtt_mem, cpu_mem, vram_mem;
    uint32_t reserved[10];
  } memory_usage;
  char container_name[AMDSMI_MAX_STRING_LENGTH];
  uint32_t cu_occupancy;
  uint32_t evicted_time;
  uint32_t reserved[10];
} amdsmi_proc_info_t;

/* The offsets the TypeScript decoder (exporter/src/sources/amdsmi-binding.ts) reads. */
_Static_assert(sizeof(amdsmi_power_cap_info_t) == 64, "amdsmi_power_cap_info_t layout");
_Static_assert(sizeof(amdsmi_asic_info_t) == 896, "amdsmi_asic_info_t layout");
_Static_assert(offsetof(amdsmi_asic_info_t, device_id) == 520, "asic device_id offset");
_Static_assert(offsetof(amdsmi_asic_info_t, num_of_compute_units) == 792, "asic CU offset");
_Static_assert(sizeof(amdsmi_power_info_t) == 192, "amdsmi_power_info_t layout");
_Static_assert(offsetof(amdsmi_power_info_t, current_socket_power) == 8, "current_socket_power offset");
_Static_assert(offsetof(amdsmi_power_info_t, power_limit) == 40, "power_limit offset");
_Static_assert(sizeof(amdsmi_proc_info_t) == 704, "amdsmi_proc_info_t layout");
_Static_assert(offsetof(amdsmi_proc_info_t, pid) == 256, "proc pid offset");
_Static_assert(offsetof(amdsmi_proc_info_t, mem) == 264, "proc mem offset");
_Static_assert(offsetof(amdsmi_proc_info_t, engine_usage.gfx) == 272, "proc gfx offset");
_Static_assert(offsetof(amdsmi_proc_info_t, memory_usage.vram_mem) == 352, "proc vram offset");

/* ---- a minimal JSON tree (numbers, strings, arrays, objects) ---- */
typedef struct node {
  char kind; /* 'n' number, 's' string, 'a' array, 'o' object, 'z' null/bool */
  double num;
  char *str;
  char **keys;
  struct node *kids;
  size_t len;
} node;

static const char *jp;
static int jerr;

static void skip(void) {
  while (*jp && isspace((unsigned char)*jp)) jp++;
}

static char *jstring(void) {
  const char *s = ++jp;
  while (*jp && *jp != '"') jp += (*jp == '\\' && jp[1]) ? 2 : 1;
  if (*jp != '"') return jerr = 1, NULL;
  char *out = strndup(s, (size_t)(jp - s)); /* escapes are kept verbatim: traces hold plain ASCII */
  jp++;
  return out;
}

static void jvalue(node *n);

static void jlist(node *n, char close, int keyed) {
  size_t cap = 0;
  jp++;
  skip();
  if (*jp == close) {
    jp++;
    return;
  }
  while (!jerr) {
    if (n->len == cap) {
      cap = cap ? cap * 2 : 8;
      n->kids = realloc(n->kids, cap * sizeof *n->kids);
      if (keyed) n->keys = realloc(n->keys, cap * sizeof *n->keys);
    }
    if (keyed) {
      skip();
      if (*jp != '"') return (void)(jerr = 1);
      n->keys[n->len] = jstring();
      skip();
      if (*jp++ != ':') return (void)(jerr = 1);
    }
    jvalue(&n->kids[n->len++]);
    skip();
    if (*jp == ',') {
      jp++;
      continue;
    }
    if (*jp == close) {
      jp++;
      return;
    }
    jerr = 1;
  }
}

static void jvalue(node *n) {
  memset(n, 0, sizeof *n);
  skip();
  if (*jp == '{') n->kind = 'o', jlist(n, '}', 1);
  else if (*jp == '[') n->kind = 'a', jlist(n, ']', 0);
  else if (*jp == '"') n->kind = 's', n->str = jstring();
  else if (*jp == '-' || isdigit((unsigned char)*jp)) {
    char *e;
    n->kind = 'n', n->num = strtod(jp, &e);
    jp = e;
  } else if (!strncmp(jp, "null", 4) || !strncmp(jp, "true", 4)) n->kind = 'z', jp += 4;
  else if (!strncmp(jp, "false", 5)) n->kind = 'z', jp += 5;
  else jerr = 1;
}

static const node *field(const node *o, const char *k) {
  if (!o || o->kind != 'o') return NULL;
  for (size_t i = 0; i < o->len; i++)
    if (!strcmp(o->keys[i], k)) return &o->kids[i];
  return NULL;
}

static double num_at(const node *a, size_t i, double dflt) {
  return a && a->kind == 'a' && i < a->len && a->kids[i].kind == 'n' ? a->kids[i].num : dflt;
}

/* ---- the trace ---- */
typedef struct {
  uint32_t pid;
  uint64_t vram, gfx_ns;
} proc_t;
typedef struct {
  double t;
  uint32_t power_w;
  uint64_t acc;
  proc_t *procs;
  size_t nprocs;
} sample_t;
typedef struct {
  char name[AMDSMI_MAX_STRING_LENGTH];
  char uuid[64];
  uint64_t cap_w;
  sample_t *samples;
  size_t n;
} trace_gpu_t;

/* A GPU handle is a pointer to one of these (processor handle == socket handle: one GPU per socket). */
typedef struct {
  int index;
  trace_gpu_t *src;
  uint64_t reset_base; /* accumulator value at the reset, subtracted afterwards */
  int reset_done;
} gpu_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int refs;
static trace_gpu_t *tgpus;
static size_t ntgpus;
static gpu_t *gpus;
static size_t ngpus;
static float resolution_uj = 15.259f;
static double speed = 1, reset_at = -1, lost_at = -1;
static int no_energy, hang_ms, first_read, started;
static uint64_t fault_mask = ~0ULL;
static struct timespec epoch;

static double env_num(const char *k, double dflt) {
  const char *v = getenv(k);
  return v && *v ? atof(v) : dflt;
}

static int load_trace(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)size + 1);
  size_t got = fread(text, 1, (size_t)size, f);
  fclose(f);
  text[got] = 0;
  node root;
  jp = text, jerr = 0;
  jvalue(&root);
  const node *list = field(&root, "gpus");
  if (jerr || !list || list->kind != 'a' || list->len == 0) return free(text), -1; /* the tree leaks: a test double */
  const node *res = field(&root, "counter_resolution_uj");
  if (res && res->kind == 'n') resolution_uj = (float)res->num;
  ntgpus = list->len;
  tgpus = calloc(ntgpus, sizeof *tgpus);
  for (size_t g = 0; g < ntgpus; g++) {
    const node *o = &list->kids[g], *s = field(o, "samples");
    trace_gpu_t *tg = &tgpus[g];
    const node *nm = field(o, "market_name"), *id = field(o, "uuid"), *cap = field(o, "power_cap_w");
    snprintf(tg->name, sizeof tg->name, "%s", nm && nm->str ? nm->str : "AMD Instinct MI300X");
    snprintf(tg->uuid, sizeof tg->uuid, "%s", id && id->str ? id->str : "00000000-0000-0000-0000-000000000000");
    tg->cap_w = cap && cap->kind == 'n' ? (uint64_t)cap->num : 750;
    if (!s || s->kind != 'a' || s->len == 0) return free(text), -1;
    tg->n = s->len;
    tg->samples = calloc(tg->n, sizeof *tg->samples);
    for (size_t i = 0; i < tg->n; i++) {
      const node *row = &s->kids[i];
      sample_t *sm = &tg->samples[i];
      sm->t = num_at(row, 0, 0);
      sm->power_w = (uint32_t)num_at(row, 1, 0);
      sm->acc = (uint64_t)num_at(row, 2, 0);
      const node *ps = row->kind == 'a' && row->len > 3 ? &row->kids[3] : NULL;
      if (ps && ps->kind == 'a' && ps->len) {
        sm->nprocs = ps->len;
        sm->procs = calloc(ps->len, sizeof *sm->procs);
        for (size_t k = 0; k < ps->len; k++) {
          sm->procs[k].pid = (uint32_t)num_at(&ps->kids[k], 0, 0);
          sm->procs[k].vram = (uint64_t)num_at(&ps->kids[k], 1, 0);
          sm->procs[k].gfx_ns = (uint64_t)num_at(&ps->kids[k], 2, 0);
        }
      }
    }
  }
  free(text);
  return 0;
}

static void free_trace(void) {
  for (size_t g = 0; g < ntgpus; g++) {
    for (size_t i = 0; i < tgpus[g].n; i++) free(tgpus[g].samples[i].procs);
    free(tgpus[g].samples);
  }
  free(tgpus);
  tgpus = NULL;
  ntgpus = 0;
}

static double elapsed(int reading) {
  if (first_read && !started) {
    if (!reading) return 0;
    clock_gettime(CLOCK_MONOTONIC, &epoch);
    started = 1;
  }
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return ((double)(now.tv_sec - epoch.tv_sec) + (double)(now.tv_nsec - epoch.tv_nsec) / 1e9) * speed;
}

static const sample_t *sample_at(const trace_gpu_t *tg, double x) {
  size_t i = 0;
  while (i + 1 < tg->n && tg->samples[i + 1].t - tg->samples[0].t <= x) i++;
  return &tg->samples[i];
}

static int faulty(const gpu_t *g) { return g->index < 64 && (fault_mask >> g->index) & 1; }

static void maybe_hang(void) {
  if (hang_ms <= 0) return;
  struct timespec ts = {hang_ms / 1000, (long)(hang_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Locks and validates a handle; on success the caller holds the mutex and gets the replay offset. */
static amdsmi_status_t enter(amdsmi_processor_handle h, int reading, gpu_t **out, double *x) {
  maybe_hang();
  pthread_mutex_lock(&mu);
  if (!refs) return pthread_mutex_unlock(&mu), AMDSMI_STATUS_NOT_INIT;
  gpu_t *g = h;
  if (!g || g < gpus || g >= gpus + ngpus) return pthread_mutex_unlock(&mu), AMDSMI_STATUS_INVAL;
  *x = elapsed(reading);
  if (lost_at >= 0 && *x >= lost_at && faulty(g)) return pthread_mutex_unlock(&mu), AMDSMI_STATUS_NOT_FOUND;
  *out = g;
  return AMDSMI_STATUS_SUCCESS;
}
#define ENTER(h, reading)                                   \
  gpu_t *g;                                                 \
  double x;                                                 \
  amdsmi_status_t st_ = enter((h), (reading), &g, &x);      \
  if (st_ != AMDSMI_STATUS_SUCCESS) return st_;
#define LEAVE(ret) return pthread_mutex_unlock(&mu), (ret)

API amdsmi_status_t amdsmi_init(uint64_t flags) {
  pthread_mutex_lock(&mu);
  if (refs) {
    refs++;
    LEAVE(AMDSMI_STATUS_SUCCESS);
  }
  if (!(flags & AMDSMI_INIT_AMD_GPUS)) LEAVE(AMDSMI_STATUS_NOT_SUPPORTED);
  const char *path = getenv("JOULEFLOW_FAKE_AMDSMI_TRACE");
  if (!path || !*path) LEAVE(AMDSMI_STATUS_DRIVER_NOT_LOADED);
  free_trace(); /* every first init replays the trace named now, as a restarted driver would */
  if (load_trace(path)) LEAVE(AMDSMI_STATUS_FILE_ERROR);
  speed = env_num("JOULEFLOW_FAKE_AMDSMI_SPEED", 1);
  reset_at = env_num("JOULEFLOW_FAKE_AMDSMI_RESET_AT", -1);
  lost_at = env_num("JOULEFLOW_FAKE_AMDSMI_LOST_AT", -1);
  no_energy = (int)env_num("JOULEFLOW_FAKE_AMDSMI_NO_ENERGY", 0);
  hang_ms = (int)env_num("JOULEFLOW_FAKE_AMDSMI_HANG_MS", 0);
  const char *ep = getenv("JOULEFLOW_FAKE_AMDSMI_EPOCH");
  first_read = ep && !strcmp(ep, "first-read");
  started = 0;
  const char *fg = getenv("JOULEFLOW_FAKE_AMDSMI_FAULT_GPU");
  if (fg && *fg) {
    fault_mask = 0;
    for (const char *p = fg; *p;) {
      long i = strtol(p, (char **)&p, 10);
      if (i >= 0 && i < 64) fault_mask |= 1ULL << i;
      while (*p == ',' || *p == ' ') p++;
    }
  } else {
    fault_mask = ~0ULL;
  }
  ngpus = (size_t)env_num("JOULEFLOW_FAKE_AMDSMI_GPUS", (double)ntgpus);
  free(gpus);
  gpus = calloc(ngpus ? ngpus : 1, sizeof *gpus);
  for (size_t i = 0; i < ngpus; i++) gpus[i] = (gpu_t){.index = (int)i, .src = &tgpus[i % ntgpus]};
  clock_gettime(CLOCK_MONOTONIC, &epoch);
  refs = 1;
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_shut_down(void) {
  pthread_mutex_lock(&mu);
  if (!refs) LEAVE(AMDSMI_STATUS_NOT_INIT);
  refs--;
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_status_code_to_string(amdsmi_status_t status, const char **text) {
  if (!text) return AMDSMI_STATUS_INVAL;
  switch (status) {
    case AMDSMI_STATUS_SUCCESS: *text = "AMDSMI_STATUS_SUCCESS: Call succeeded"; break;
    case AMDSMI_STATUS_INVAL: *text = "AMDSMI_STATUS_INVAL: Invalid parameters"; break;
    case AMDSMI_STATUS_NOT_SUPPORTED: *text = "AMDSMI_STATUS_NOT_SUPPORTED: Command not supported"; break;
    case AMDSMI_STATUS_NOT_FOUND: *text = "AMDSMI_STATUS_NOT_FOUND: Device Not found"; break;
    case AMDSMI_STATUS_NOT_INIT: *text = "AMDSMI_STATUS_NOT_INIT: Device not initialized"; break;
    case AMDSMI_STATUS_DRIVER_NOT_LOADED: *text = "AMDSMI_STATUS_DRIVER_NOT_LOADED: Processor driver not loaded"; break;
    case AMDSMI_STATUS_OUT_OF_RESOURCES: *text = "AMDSMI_STATUS_OUT_OF_RESOURCES: Not enough memory"; break;
    case AMDSMI_STATUS_FILE_ERROR: *text = "AMDSMI_STATUS_FILE_ERROR: Problem accessing a file"; break;
    default: *text = "An unknown error occurred"; break;
  }
  return AMDSMI_STATUS_SUCCESS;
}

/* Socket handles: one per GPU. A NULL array asks for the count. */
API amdsmi_status_t amdsmi_get_socket_handles(uint32_t *count, amdsmi_socket_handle *handles) {
  maybe_hang();
  pthread_mutex_lock(&mu);
  if (!refs) LEAVE(AMDSMI_STATUS_NOT_INIT);
  if (!count) LEAVE(AMDSMI_STATUS_INVAL);
  if (handles) {
    if (*count < ngpus) {
      *count = (uint32_t)ngpus;
      LEAVE(AMDSMI_STATUS_OUT_OF_RESOURCES);
    }
    for (size_t i = 0; i < ngpus; i++) handles[i] = &gpus[i];
  }
  *count = (uint32_t)ngpus;
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_get_processor_handles(amdsmi_socket_handle socket, uint32_t *count, amdsmi_processor_handle *handles) {
  if (!count) return AMDSMI_STATUS_INVAL;
  ENTER(socket, 0);
  if (handles) {
    if (*count < 1) {
      *count = 1;
      LEAVE(AMDSMI_STATUS_OUT_OF_RESOURCES);
    }
    handles[0] = g;
  }
  *count = 1;
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_get_processor_type(amdsmi_processor_handle h, processor_type_t *type) {
  if (!type) return AMDSMI_STATUS_INVAL;
  ENTER(h, 0);
  (void)g, (void)x;
  *type = AMDSMI_PROCESSOR_TYPE_AMD_GPU;
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_get_gpu_asic_info(amdsmi_processor_handle h, amdsmi_asic_info_t *info) {
  if (!info) return AMDSMI_STATUS_INVAL;
  ENTER(h, 0);
  (void)x;
  memset(info, 0, sizeof *info);
  snprintf(info->market_name, sizeof info->market_name, "%s", g->src->name);
  info->vendor_id = 0x1002;
  snprintf(info->vendor_name, sizeof info->vendor_name, "Advanced Micro Devices Inc. [AMD/ATI]");
  info->device_id = 0x74a1; /* MI300X */
  info->num_of_compute_units = 304;
  info->oam_id = (uint32_t)g->index;
  info->target_graphics_version = 0x942;
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_get_gpu_device_uuid(amdsmi_processor_handle h, unsigned int *len, char *uuid) {
  if (!len || !uuid || *len < AMDSMI_GPU_UUID_SIZE) return AMDSMI_STATUS_INVAL;
  ENTER(h, 0);
  (void)x;
  /* Replicated GPUs get distinct UUIDs: the last hex digit carries the index. */
  snprintf(uuid, *len, "%s", g->src->uuid);
  size_t n = strlen(uuid);
  if (n && g->index > 0) uuid[n - 1] = "0123456789abcdef"[g->index % 16];
  *len = (unsigned int)n;
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_get_power_cap_info(amdsmi_processor_handle h, uint32_t sensor, amdsmi_power_cap_info_t *info) {
  if (!info || sensor != 0) return AMDSMI_STATUS_INVAL;
  ENTER(h, 0);
  (void)x;
  memset(info, 0, sizeof *info);
  /* µW on bare-metal Linux. */
  info->power_cap = info->default_power_cap = g->src->cap_w * 1000000ULL;
  info->min_power_cap = 0;
  info->max_power_cap = g->src->cap_w * 1000000ULL;
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_get_power_info(amdsmi_processor_handle h, amdsmi_power_info_t *info) {
  if (!info) return AMDSMI_STATUS_INVAL;
  ENTER(h, 1);
  const sample_t *s = sample_at(g->src, x);
  memset(info, 0xff, sizeof *info); /* unsupported members read UINT32_MAX / UINT64_MAX, as documented */
  info->socket_power = s->power_w;
  info->current_socket_power = s->power_w;
  info->power_limit = (uint32_t)g->src->cap_w;
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_get_energy_count(amdsmi_processor_handle h, uint64_t *energy, float *resolution, uint64_t *timestamp) {
  if (!energy || !resolution || !timestamp) return AMDSMI_STATUS_INVAL;
  ENTER(h, 1);
  if (no_energy && faulty(g)) LEAVE(AMDSMI_STATUS_NOT_SUPPORTED);
  const sample_t *s = sample_at(g->src, x);
  uint64_t acc = s->acc;
  if (reset_at >= 0 && x >= reset_at && faulty(g)) {
    if (!g->reset_done) g->reset_base = acc, g->reset_done = 1;
    acc -= g->reset_base;
  }
  *energy = acc;
  *resolution = resolution_uj;
  *timestamp = (uint64_t)(x / speed * 1e9);
  LEAVE(AMDSMI_STATUS_SUCCESS);
}

API amdsmi_status_t amdsmi_get_gpu_process_list(amdsmi_processor_handle h, uint32_t *max, amdsmi_proc_info_t *list) {
  if (!max) return AMDSMI_STATUS_INVAL;
  ENTER(h, 1);
  const sample_t *s = sample_at(g->src, x);
  uint32_t have = *max;
  *max = (uint32_t)s->nprocs;
  if (!list) LEAVE(AMDSMI_STATUS_SUCCESS);
  for (size_t i = 0; i < s->nprocs && i < have; i++) {
    amdsmi_proc_info_t *p = &list[i];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "python3");
    p->pid = s->procs[i].pid;
    p->mem = p->memory_usage.vram_mem = s->procs[i].vram;
    p->engine_usage.gfx = s->procs[i].gfx_ns;
  }
  LEAVE(have >= s->nprocs ? AMDSMI_STATUS_SUCCESS : AMDSMI_STATUS_OUT_OF_RESOURCES);
}

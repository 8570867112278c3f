/* One WAGI guest run in one call: zerowatt's native fast path for the per-request sequence.
 *
 * Why this exists: the wasmtime C API sequence of a fresh-instance request (store, limits, WASI
 * context with argv/env/stdio/preopens, instantiate from the InstancePre, look up the entry point,
 * call it, delete the store) costs ~33 us on the benchmark machine when driven from C, but ~67 us
 * when driven call by call through ctypes (docs/benchmarks.md). This module does the whole sequence
 * in one Python call and returns a small tuple; zerowatt.wasm.wagi.executor classifies the outcome.
 *
 * It does not link against wasmtime: zerowatt.wasm.native passes the addresses of the C API
 * functions of the libwasmtime that wasmtime-py has already loaded (init()), so both always agree.
 * The GIL is released while wasmtime runs, as ctypes does: guests on the thread pool run in parallel
 * with the event loop.
 *
 * Deadlines and aborts (issue 10): the module also owns the engine's epoch ticker, a pthread that
 * increments the epoch without the GIL (a Python thread starved of the GIL or the CPU stretched a 2 s
 * deadline to ~10 s), and each run installs an epoch-deadline callback that fires every tick and
 * checks the run's wall-clock deadline (CLOCK_MONOTONIC) and its abort flag: the deadline holds
 * however late or few the ticks are, an interrupt can only mean the deadline passed or the client
 * left (never a spurious one during instantiation), and a run is aborted from another thread by
 * setting one byte, without touching the store (whose context is not thread-safe).
 *
 * Built on demand by zerowatt.wasm.native with the system C compiler (or `make setup`).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

/* Layouts of the few C API structs used by value (wasmtime.h, stable across releases). */
typedef struct { uint64_t store_id; size_t priv; } zw_instance_t;
typedef struct { uint64_t store_id; void *priv; } zw_func_t;
typedef struct {
    uint8_t kind;
    union { zw_func_t func; uint64_t raw[4]; } of;
} zw_extern_t;
typedef struct { size_t size; uint8_t *data; } zw_byte_vec_t;

#define ZW_EXTERN_MEMORY 3     /* WASMTIME_EXTERN_MEMORY */
#define ZW_TRAP_INTERRUPT 10   /* WASMTIME_TRAP_CODE_INTERRUPT */

typedef ptrdiff_t (*zw_write_fn)(void *, const unsigned char *, size_t);

/* The C API functions used, in the order init() receives their addresses (see native.py). */
static struct {
    void *(*store_new)(void *, void *, void (*)(void *));
    void *(*store_context)(void *);
    void (*store_limiter)(void *, int64_t, int64_t, int64_t, int64_t, int64_t);
    void (*store_delete)(void *);
    void *(*wasi_config_new)(void);
    void (*wasi_config_delete)(void *);
    bool (*wasi_config_set_argv)(void *, size_t, const char **);
    bool (*wasi_config_set_env)(void *, size_t, const char **, const char **);
    void (*wasi_config_set_stdin_bytes)(void *, zw_byte_vec_t *);
    void (*wasi_config_inherit_stdout)(void *);
    bool (*wasi_config_set_stdout_file)(void *, const char *);
    void (*wasi_config_inherit_stderr)(void *);
    void (*wasi_config_set_stderr_custom)(void *, zw_write_fn, void *, void (*)(void *));
    bool (*wasi_config_preopen_dir)(void *, const char *, const char *, bool);
    void *(*context_set_wasi)(void *, void *);
    void (*context_set_epoch_deadline)(void *, uint64_t);
    void *(*instance_pre_instantiate)(void *, void *, zw_instance_t *, void **);
    bool (*instance_export_get)(void *, const zw_instance_t *, const char *, size_t, zw_extern_t *);
    void *(*func_call)(void *, const zw_func_t *, const void *, size_t, void *, size_t, void **);
    size_t (*memory_data_size)(void *, const void *);
    void (*byte_vec_new)(zw_byte_vec_t *, size_t, const uint8_t *);
    void (*byte_vec_delete)(zw_byte_vec_t *);
    void (*error_message)(void *, zw_byte_vec_t *);
    bool (*error_exit_status)(void *, int *);
    void (*error_delete)(void *);
    void (*trap_message)(void *, zw_byte_vec_t *);
    bool (*trap_code)(void *, uint8_t *);
    void (*trap_delete)(void *);
    void (*engine_increment_epoch)(void *);
    void (*store_epoch_deadline_callback)(void *, void *(*)(void *, void *, uint64_t *, uint8_t *), void *,
                                          void (*)(void *));
    void *(*error_new)(const char *);
} api;
#define API_COUNT (sizeof(api) / sizeof(void *))
static bool ready = false;

/* Outcome kinds; mirrored by zerowatt.wasm.wagi.executor.RunKind. */
enum {
    K_OK = 0, K_EXIT = 1, K_TRAP = 2, K_INTERRUPT = 3, K_INSTANTIATE = 4, K_SETUP = 5, K_NO_EXPORT = 6, K_ABORTED = 7
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- the epoch ticker ----------------------------------------------------------------------------
 * Ticker(engine, engine_address, tick_seconds, linger_seconds): increments the engine's epoch every
 * tick while runs are in flight (enter()/leave()) and for `linger` after the last one, then sleeps on a
 * condition variable (an idle host wakes up for nothing). Ticks are paced by the monotonic clock with
 * absolute sleeps, and a late wake-up (CPU contention) increments once per tick missed, so the epoch
 * counts wall-clock ticks. The Ticker keeps a reference to the Python engine object: the engine
 * outlives the thread that increments it. */
typedef struct {
    PyObject_HEAD
    PyObject *engine_obj;
    void *engine;
    uint64_t tick_ns, linger_ticks;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long active;
    uint64_t entries; /* runs started: a tick that saw none in flight may still have had some */
    bool sleeping, stopped, started;
    pthread_t thread;
    uint64_t increments; /* read with __atomic_load_n */
} Ticker;

static void *ticker_main(void *arg) {
    Ticker *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->sleeping && !t->stopped) pthread_cond_wait(&t->cv, &t->mu);
        if (t->stopped) break;
        uint64_t seen = t->entries, idle = 0, next = now_ns();
        for (;;) {
            next += t->tick_ns;
            pthread_mutex_unlock(&t->mu);
            struct timespec at = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) != 0) {} /* EINTR: again */
            uint64_t now = now_ns(), n = 1;
            if (now > next) n += (now - next) / t->tick_ns; /* woke late: the ticks missed meanwhile */
            if (n > 1000) n = 1000;                          /* a stopped process: no burst of millions */
            next += (n - 1) * t->tick_ns;
            if (now > next + t->tick_ns) next = now;        /* capped: pace from now */
            for (uint64_t i = 0; i < n; i++) api.engine_increment_epoch(t->engine);
            __atomic_add_fetch(&t->increments, n, __ATOMIC_RELAXED);
            pthread_mutex_lock(&t->mu);
            if (t->stopped) break;
            if (t->active || t->entries != seen) {
                seen = t->entries;
                idle = 0;
            } else if (++idle > t->linger_ticks) {
                t->sleeping = true;
                break;
            }
        }
        if (t->stopped) break;
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void ticker_halt(Ticker *t) {
    if (!t->started) return;
    pthread_mutex_lock(&t->mu);
    t->stopped = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(t->thread, NULL);
    Py_END_ALLOW_THREADS
    t->started = false;
}

static int ticker_init(PyObject *self, PyObject *args, PyObject *kwargs) {
    Ticker *t = (Ticker *)self;
    PyObject *engine_obj, *address;
    double tick, linger;
    static char *names[] = {"engine", "engine_address", "tick", "linger", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOdd", names, &engine_obj, &address, &tick, &linger)) return -1;
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "init() was not called");
        return -1;
    }
    if (t->started) {
        PyErr_SetString(PyExc_RuntimeError, "Ticker already initialised");
        return -1;
    }
    void *engine = PyLong_AsVoidPtr(address);
    if (engine == NULL) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "the engine address is NULL");
        return -1;
    }
    if (!(tick > 0.0) || !(linger >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "tick must be > 0 and linger >= 0");
        return -1;
    }
    t->engine = engine;
    t->engine_obj = Py_NewRef(engine_obj);
    t->tick_ns = (uint64_t)(tick * 1e9);
    if (t->tick_ns == 0) t->tick_ns = 1;
    t->linger_ticks = (uint64_t)(linger / tick) + 1;
    t->sleeping = true;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    /* The thread needs no signals: they are all handled by Python's main thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&t->thread, NULL, ticker_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        PyErr_Format(PyExc_OSError, "cannot start the epoch ticker thread (error %d)", rc);
        return -1;
    }
    t->started = true;
    return 0;
}

static void ticker_dealloc(PyObject *self) {
    Ticker *t = (Ticker *)self;
    bool inited = t->engine_obj != NULL;
    ticker_halt(t);
    if (inited) {
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
    }
    Py_CLEAR(t->engine_obj);
    PyTypeObject *type = Py_TYPE(self);
    type->tp_free(self);
    Py_DECREF(type);
}

static void ticker_enter_c(Ticker *t) {
    pthread_mutex_lock(&t->mu);
    t->active++;
    t->entries++;
    if (t->sleeping) {
        t->sleeping = false;
        pthread_cond_signal(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
}

static PyObject *ticker_enter(PyObject *self, PyObject *unused) {
    (void)unused;
    Ticker *t = (Ticker *)self;
    if (t->started) ticker_enter_c(t);
    Py_RETURN_NONE;
}

static PyObject *ticker_leave(PyObject *self, PyObject *unused) {
    (void)unused;
    Ticker *t = (Ticker *)self;
    if (t->started) {
        pthread_mutex_lock(&t->mu);
        t->active--;
        pthread_mutex_unlock(&t->mu);
    }
    Py_RETURN_NONE;
}

static PyObject *ticker_stop(PyObject *self, PyObject *unused) {
    (void)unused;
    ticker_halt((Ticker *)self);
    Py_RETURN_NONE;
}

static PyObject *ticker_increments(PyObject *self, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLongLong(__atomic_load_n(&((Ticker *)self)->increments, __ATOMIC_RELAXED));
}

static PyObject *ticker_sleeping(PyObject *self, void *closure) {
    (void)closure;
    Ticker *t = (Ticker *)self;
    pthread_mutex_lock(&t->mu);
    bool sleeping = t->sleeping || !t->started;
    pthread_mutex_unlock(&t->mu);
    return PyBool_FromLong(sleeping);
}

static PyMethodDef ticker_methods[] = {
    {"enter", ticker_enter, METH_NOARGS, "A run starts: tick (wake the thread if it sleeps)."},
    {"leave", ticker_leave, METH_NOARGS, "A run ended."},
    {"stop", ticker_stop, METH_NOARGS, "Stop and join the thread (idempotent)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef ticker_getset[] = {
    {"increments", ticker_increments, NULL, "Epoch increments so far.", NULL},
    {"sleeping", ticker_sleeping, NULL, "Whether the thread sleeps (no run in flight, linger over).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot ticker_slots[] = {
    {Py_tp_doc, "Ticker(engine, engine_address, tick, linger): the engine's epoch ticker thread."},
    {Py_tp_init, ticker_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, ticker_dealloc},
    {Py_tp_methods, ticker_methods},
    {Py_tp_getset, ticker_getset},
    {0, NULL},
};

static PyType_Spec ticker_spec = {
    .name = "_wagi_native.Ticker",
    .basicsize = sizeof(Ticker),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = ticker_slots,
};

/* ---- the per-run deadline and abort check --------------------------------------------------------
 * Installed as the store's epoch-deadline callback with a deadline of one tick: wasmtime calls it at
 * every tick the guest's code sees, on the guest's thread, inside the store. */
enum { W_NONE = 0, W_DEADLINE = 1, W_ABORTED = 2 };
typedef struct {
    uint64_t deadline_ns;
    const volatile char *abort; /* a bytearray's first byte: non-zero once the request is aborted */
    int why;
} zw_watch_t;

static void *on_epoch(void *ctx, void *data, uint64_t *delta, uint8_t *kind) {
    (void)ctx;
    zw_watch_t *w = data;
    if (w->abort != NULL && __atomic_load_n(w->abort, __ATOMIC_RELAXED)) {
        w->why = W_ABORTED;
        return api.error_new("zerowatt: the request was aborted");
    }
    if (now_ns() >= w->deadline_ns) {
        w->why = W_DEADLINE;
        return api.error_new("zerowatt: the request's deadline passed");
    }
    *delta = 1;
    *kind = 0; /* WASMTIME_UPDATE_DEADLINE_CONTINUE */
    return NULL;
}

static PyObject *init(PyObject *self, PyObject *addresses) {
    (void)self;
    if (!PyTuple_Check(addresses) || (size_t)PyTuple_GET_SIZE(addresses) != API_COUNT) {
        PyErr_Format(PyExc_TypeError, "init() takes a tuple of %zu function addresses", (size_t)API_COUNT);
        return NULL;
    }
    void **slots = (void **)&api;
    for (size_t i = 0; i < API_COUNT; i++) {
        void *p = PyLong_AsVoidPtr(PyTuple_GET_ITEM(addresses, i));
        if (p == NULL) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "function address %zu is NULL", i);
            return NULL;
        }
        slots[i] = p;
    }
    ready = true;
    Py_RETURN_NONE;
}

/* UTF-8 pointers of the str items of `seq` (a list or tuple) into out[0..n). They are C strings: a NUL
 * inside one (a percent-decoded %00) ends it, as with the ctypes path and any CGI host. */
static int utf8_items(PyObject *seq, const char **out) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *s = PyUnicode_AsUTF8(items[i]);
        if (s == NULL) return -1;
        out[i] = s;
    }
    return 0;
}

static int is_seq(PyObject *o) { return PyList_Check(o) || PyTuple_Check(o); }

static PyObject *take_message(zw_byte_vec_t *vec, bool trailing_nul) {
    size_t size = vec->size;
    if (trailing_nul && size > 0 && vec->data[size - 1] == 0) size--;
    PyObject *text = PyUnicode_DecodeUTF8((const char *)vec->data, (Py_ssize_t)size, "replace");
    api.byte_vec_delete(vec);
    return text;
}

static double thread_cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* run(engine, pre, memory_limit, timeout, argv, names_fixed, names_extra, values_fixed,
 *     values_extra, stdin, stdout_path, stderr_callback, stderr_data, preopens, entrypoint, abort)
 *   -> (kind, exit_code, message, memory_size, cpu_seconds)
 *
 * engine, pre: addresses of the wasm_engine_t and wasmtime_instance_pre_t;
 * argv, names_*, values_*: lists or tuples of str (the environment is names_fixed + names_extra);
 * stdin: bytes; stdout_path: bytes (a file wasmtime opens) or None (inherit fd 1);
 * stderr_callback: address of a write callback, or None to inherit fd 2; stderr_data: its data argument;
 * preopens: tuple of (host bytes, guest bytes), read-only; entrypoint: bytes;
 * timeout: seconds from now (float) until the run is interrupted (K_INTERRUPT), checked against the
 * monotonic clock at every epoch tick, instantiation included; abort: None, or a bytearray whose first
 * byte another thread sets to abort the run at the next tick (K_ABORTED).
 * memory_size is the guest memory's size after an exit or trap (-1 if none), so the caller can
 * tell a hit memory cap from other faults.
 */
static PyObject *run(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "init() was not called");
        return NULL;
    }
    if (nargs != 16) {
        PyErr_SetString(PyExc_TypeError, "run() takes 16 arguments");
        return NULL;
    }
    void *engine = PyLong_AsVoidPtr(args[0]);
    void *pre = PyLong_AsVoidPtr(args[1]);
    long long memory_limit = PyLong_AsLongLong(args[2]);
    double timeout = PyFloat_AsDouble(args[3]);
    if (PyErr_Occurred()) return NULL;
    if (args[15] != Py_None && (!PyByteArray_Check(args[15]) || PyByteArray_GET_SIZE(args[15]) < 1)) {
        PyErr_SetString(PyExc_TypeError, "run(): abort is None or a non-empty bytearray");
        return NULL;
    }
    zw_watch_t watch = {0, args[15] == Py_None ? NULL : PyByteArray_AS_STRING(args[15]), W_NONE};
    if (!(timeout > 0.0)) timeout = 0.0;
    if (timeout > 1e9) timeout = 1e9;
    PyObject *argv = args[4], *names_fixed = args[5], *names_extra = args[6];
    PyObject *values_fixed = args[7], *values_extra = args[8], *stdin_obj = args[9];
    PyObject *stdout_obj = args[10], *preopens = args[13], *entry_obj = args[14];
    void *stderr_cb = args[11] == Py_None ? NULL : PyLong_AsVoidPtr(args[11]);
    void *stderr_data = args[12] == Py_None ? NULL : PyLong_AsVoidPtr(args[12]);
    if (PyErr_Occurred()) return NULL;
    if (!is_seq(argv) || !is_seq(names_fixed) || !is_seq(names_extra) || !is_seq(values_fixed) ||
        !is_seq(values_extra) || !PyTuple_Check(preopens) || !PyBytes_Check(stdin_obj) ||
        !PyBytes_Check(entry_obj) || (stdout_obj != Py_None && !PyBytes_Check(stdout_obj))) {
        PyErr_SetString(PyExc_TypeError, "run(): argument of the wrong type");
        return NULL;
    }
    Py_ssize_t argc = PySequence_Fast_GET_SIZE(argv);
    Py_ssize_t nf = PySequence_Fast_GET_SIZE(names_fixed), ne = PySequence_Fast_GET_SIZE(names_extra);
    if (PySequence_Fast_GET_SIZE(values_fixed) + PySequence_Fast_GET_SIZE(values_extra) != nf + ne) {
        PyErr_SetString(PyExc_ValueError, "run(): as many environment values as names are needed");
        return NULL;
    }
    Py_ssize_t np = PyTuple_GET_SIZE(preopens);
    for (Py_ssize_t i = 0; i < np; i++) {
        PyObject *p = PyTuple_GET_ITEM(preopens, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(p, 0)) ||
            !PyBytes_Check(PyTuple_GET_ITEM(p, 1))) {
            PyErr_SetString(PyExc_TypeError, "run(): preopens are (host bytes, guest bytes) pairs");
            return NULL;
        }
    }
    if (engine == NULL || pre == NULL) {
        PyErr_SetString(PyExc_ValueError, "run(): the engine and the InstancePre are needed");
        return NULL;
    }
    /* One allocation for argv, names and values (pointers into the str objects, which the caller keeps). */
    Py_ssize_t envc = nf + ne;
    const char **strings = PyMem_Malloc(sizeof(char *) * (size_t)(argc + 2 * envc + 1));
    if (strings == NULL) return PyErr_NoMemory();
    const char **names = strings + argc, **values = names + envc;
    if (utf8_items(argv, strings) || utf8_items(names_fixed, names) || utf8_items(names_extra, names + nf) ||
        utf8_items(values_fixed, values) || utf8_items(values_extra, values + PySequence_Fast_GET_SIZE(values_fixed))) {
        PyMem_Free(strings);
        return NULL;
    }
    const uint8_t *body = (const uint8_t *)PyBytes_AS_STRING(stdin_obj);
    size_t body_len = (size_t)PyBytes_GET_SIZE(stdin_obj);
    const char *stdout_path = stdout_obj == Py_None ? NULL : PyBytes_AS_STRING(stdout_obj);
    const char *entry = PyBytes_AS_STRING(entry_obj);
    size_t entry_len = (size_t)PyBytes_GET_SIZE(entry_obj);

    int kind = K_OK, exit_code = 0;
    long long memory_size = -1;
    void *error = NULL, *trap = NULL;
    zw_byte_vec_t message = {0, NULL};
    bool have_message = false, message_is_trap = false;
    const char *setup_failure = NULL;
    double cpu;

    Py_BEGIN_ALLOW_THREADS
    double cpu_start = thread_cpu();
    watch.deadline_ns = now_ns() + (uint64_t)(timeout * 1e9);
    void *store = api.store_new(engine, NULL, NULL);
    void *ctx = api.store_context(store);
    api.store_limiter(store, memory_limit, -1, -1, -1, -1);
    void *wasi = api.wasi_config_new();
    api.wasi_config_set_argv(wasi, (size_t)argc, strings);
    api.wasi_config_set_env(wasi, (size_t)envc, names, values);
    if (body_len) { /* without it, stdin is empty (EOF at once) */
        zw_byte_vec_t vec;
        api.byte_vec_new(&vec, body_len, body);
        api.wasi_config_set_stdin_bytes(wasi, &vec); /* takes ownership */
    }
    if (stdout_path == NULL) api.wasi_config_inherit_stdout(wasi);
    else if (!api.wasi_config_set_stdout_file(wasi, stdout_path)) setup_failure = "cannot open the stdout scratch file";
    if (stderr_cb == NULL) api.wasi_config_inherit_stderr(wasi);
    else api.wasi_config_set_stderr_custom(wasi, (zw_write_fn)stderr_cb, stderr_data, NULL);
    /* The preopens' bytes are read without the GIL: bytes objects are immutable and the tuple is held. */
    for (Py_ssize_t i = 0; i < np && setup_failure == NULL; i++) {
        PyObject *p = PyTuple_GET_ITEM(preopens, i);
        if (!api.wasi_config_preopen_dir(wasi, PyBytes_AS_STRING(PyTuple_GET_ITEM(p, 0)),
                                         PyBytes_AS_STRING(PyTuple_GET_ITEM(p, 1)), false))
            setup_failure = "cannot preopen a directory of the component's files";
    }
    if (setup_failure != NULL) {
        api.wasi_config_delete(wasi);
        kind = K_SETUP;
    } else if ((error = api.context_set_wasi(ctx, wasi)) != NULL) { /* consumes the config */
        kind = K_SETUP;
        api.error_message(error, &message);
        have_message = true;
    } else {
        /* One tick: the callback then checks the clock and the abort flag at every tick. */
        api.store_epoch_deadline_callback(store, on_epoch, &watch, NULL);
        api.context_set_epoch_deadline(ctx, 1);
        zw_instance_t instance;
        error = api.instance_pre_instantiate(pre, ctx, &instance, &trap);
        if (error != NULL || trap != NULL) {
            kind = K_INSTANTIATE; /* unless the callback stopped it (a start function ran too long): below */
        } else {
            zw_extern_t ext;
            if (!api.instance_export_get(ctx, &instance, entry, entry_len, &ext)) {
                kind = K_NO_EXPORT;
            } else {
                error = api.func_call(ctx, &ext.of.func, NULL, 0, NULL, 0, &trap);
                if (error != NULL) {
                    kind = api.error_exit_status(error, &exit_code) ? (exit_code ? K_EXIT : K_OK) : K_TRAP;
                } else if (trap != NULL) {
                    uint8_t code;
                    kind = api.trap_code(trap, &code) && code == ZW_TRAP_INTERRUPT ? K_INTERRUPT : K_TRAP;
                }
                if (kind == K_TRAP && watch.why != W_NONE) kind = K_INTERRUPT; /* reclassified below */
                if (kind == K_EXIT || kind == K_TRAP) {
                    zw_extern_t memory;
                    if (api.instance_export_get(ctx, &instance, "memory", 6, &memory) &&
                        memory.kind == ZW_EXTERN_MEMORY)
                        memory_size = (long long)api.memory_data_size(ctx, &memory.of);
                }
            }
        }
        if ((kind == K_INSTANTIATE || kind == K_INTERRUPT) && watch.why != W_NONE)
            kind = watch.why == W_ABORTED ? K_ABORTED : K_INTERRUPT;
        if (kind != K_OK && kind != K_EXIT && kind != K_INTERRUPT && kind != K_NO_EXPORT && kind != K_ABORTED) {
            if (error != NULL) {
                api.error_message(error, &message);
            } else {
                api.trap_message(trap, &message);
                message_is_trap = true;
            }
            have_message = true;
        }
    }
    if (error != NULL) api.error_delete(error);
    if (trap != NULL) api.trap_delete(trap);
    cpu = thread_cpu() - cpu_start;
    api.store_delete(store);
    Py_END_ALLOW_THREADS

    PyMem_Free(strings);
    PyObject *text;
    if (have_message) {
        text = take_message(&message, message_is_trap);
        if (text == NULL) return NULL;
    } else if (setup_failure != NULL) {
        text = PyUnicode_FromString(setup_failure);
    } else {
        text = Py_NewRef(Py_None);
    }
    return Py_BuildValue("(iiNLd)", kind, exit_code, text, memory_size, cpu);
}

static PyMethodDef methods[] = {
    {"init", (PyCFunction)init, METH_O, "init(addresses): the wasmtime C API functions to call."},
    {"run", (PyCFunction)(void (*)(void))run, METH_FASTCALL, "run(...): one WAGI guest run (see the source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_wagi_native", .m_doc = NULL, .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__wagi_native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    PyObject *type = PyType_FromSpec(&ticker_spec);
    if (type == NULL || PyModule_AddObject(m, "Ticker", type) < 0) {
        Py_XDECREF(type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/*
 * echo: a WAGI guest that answers with what it was given, the benchmark app of zerowatt.
 *
 * Response body: every CGI environment variable as a "NAME=value" line (REQUEST_METHOD, PATH_INFO,
 * QUERY_STRING, X_FULL_URL, HTTP_* headers, ...), one empty line, then the request body from stdin,
 * byte for byte (streamed in chunks, so bodies of many MiB cost no more memory than the chunk).
 * Response headers: X-Echo-Method and X-Echo-Body-Length. The query string can also ask for
 * "status=NNN" (answered with a CGI Status header) and "location=URL" (a CGI Location header), so
 * the host's handling of status codes and redirects can be tested with this one guest.
 *
 * Kept lean on purpose (no stdio, one write per buffer): it is the module the cold-start and
 * warm-request benchmarks instantiate.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

enum { CHUNK = 64 * 1024 };
static char out[CHUNK];
static size_t used;

static void flush_out(void) {
    size_t done = 0;
    while (done < used) {
        ssize_t n = write(1, out + done, used - done);
        if (n <= 0) _exit(1);
        done += (size_t)n;
    }
    used = 0;
}

static void put(const char *s, size_t len) {
    while (len > 0) {
        size_t room = CHUNK - used;
        size_t take = len < room ? len : room;
        memcpy(out + used, s, take);
        used += take;
        s += take;
        len -= take;
        if (used == CHUNK) flush_out();
    }
}

static void puts_(const char *s) { put(s, strlen(s)); }

static void put_uint(unsigned long long v) {
    char digits[24];
    int i = sizeof digits;
    do {
        digits[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(digits + i, sizeof digits - i);
}

/* Copies the value of query parameter `name` (undecoded, up to the next '&') into `dst`; 1 if found. */
static int query_param(const char *query, const char *name, char *dst, size_t cap) {
    size_t nlen = strlen(name);
    const char *p = query;
    while (p && *p) {
        if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t len = strcspn(v, "&");
            if (len >= cap) len = cap - 1;
            memcpy(dst, v, len);
            dst[len] = '\0';
            return 1;
        }
        p = strchr(p, '&');
        if (p) p++;
    }
    return 0;
}

int main(void) {
    const char *method = getenv("REQUEST_METHOD");
    const char *query = getenv("QUERY_STRING");
    const char *length = getenv("CONTENT_LENGTH");
    char value[1024];

    /* CGI headers. */
    puts_("Content-Type: text/plain; charset=utf-8\n");
    if (query && query_param(query, "status", value, sizeof value)) {
        puts_("Status: ");
        puts_(value);
        puts_("\n");
    }
    if (query && query_param(query, "location", value, sizeof value)) {
        puts_("Location: ");
        puts_(value);
        puts_("\n");
    }
    puts_("X-Echo-Method: ");
    puts_(method ? method : "");
    puts_("\nX-Echo-Body-Length: ");
    put_uint(length ? strtoull(length, NULL, 10) : 0);
    puts_("\n\n");

    /* Body part 1: the environment the host gave us. */
    for (char **e = environ; *e; e++) {
        puts_(*e);
        puts_("\n");
    }
    puts_("\n");

    /* Body part 2: the request body, streamed from stdin. */
    flush_out();
    for (;;) {
        ssize_t n = read(0, out, CHUNK);
        if (n <= 0) break;
        used = (size_t)n;
        flush_out();
    }
    return 0;
}

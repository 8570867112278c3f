/* A WAGI test guest: its behaviour is chosen by PATH_INFO so one module covers every host test.
 * /env     prints argv and the environment (one NAME=value per line)
 * /echo    copies the request body (stdin) to the response
 * /file    prints the mounted file named by the query string
 * /ls      lists the root of the guest file system (what the host exposes)
 * /write   tries to create a file under the first mount (must fail: read-only)
 * /status  answers "Status: 418" with a body; /redirect answers only a Location
 * /answer  answers the status named by the query string (e.g. ?204) with a body and a Content-Length
 * /bad     prints no header block at all (malformed CGI output)
 * /trap    executes an unreachable instruction; /exit3 exits with code 3
 * /loop    never returns (the deadline must stop it); /mem allocates until the cap stops it
 * /stderr  writes a line to stderr, then answers normally
 * /hop     sets framing/hop-by-hop headers (the host must drop them) and a UTF-8 header value
 * /remember prints what an earlier request left in its static data and heap, then leaves the query
 *          string and a filled 64 KiB block there (a fresh instance per request must never see them)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;
char *volatile kept;

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v ? v : fallback;
}

int main(int argc, char **argv) {
    const char *path = env_or("PATH_INFO", "");
    if (strcmp(path, "/env") == 0) {
        printf("Content-Type: text/plain\n\n");
        for (int i = 0; i < argc; i++) printf("ARGV%d=%s\n", i, argv[i]);
        for (char **e = environ; *e; e++) printf("%s\n", *e);
    } else if (strcmp(path, "/echo") == 0) {
        printf("Content-Type: application/octet-stream\nX-Echo: yes\n\n");
        static char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
    } else if (strcmp(path, "/file") == 0) {
        FILE *f = fopen(env_or("QUERY_STRING", ""), "rb");
        if (!f) {
            printf("Status: 404 Not Found\nContent-Type: text/plain\n\nno such file\n");
            return 0;
        }
        printf("Content-Type: text/plain\n\n");
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, stdout);
        fclose(f);
    } else if (strcmp(path, "/ls") == 0) {
        printf("Content-Type: text/plain\n\n");
        DIR *d = opendir(env_or("QUERY_STRING", "/"));
        if (!d) {
            printf("(unreadable)\n");
            return 0;
        }
        struct dirent *ent;
        while ((ent = readdir(d)) != NULL) printf("%s\n", ent->d_name);
        closedir(d);
    } else if (strcmp(path, "/write") == 0) {
        FILE *f = fopen(env_or("QUERY_STRING", "/data/new.txt"), "wb");
        printf("Content-Type: text/plain\n\n%s\n", f ? "written" : "refused");
        if (f) fclose(f);
    } else if (strcmp(path, "/status") == 0) {
        printf("Status: 418 I'm a teapot\nContent-Type: text/plain\nX-Custom: a b c\n\nteapot\n");
    } else if (strcmp(path, "/answer") == 0) {
        printf("Status: %s\nContent-Type: text/plain\nContent-Length: 27\n\nbody that must not be sent\n",
               env_or("QUERY_STRING", "200"));
    } else if (strcmp(path, "/redirect") == 0) {
        printf("Location: /elsewhere\n\n");
    } else if (strcmp(path, "/bad") == 0) {
        printf("this is not a CGI header block");
    } else if (strcmp(path, "/trap") == 0) {
        __builtin_trap();
    } else if (strcmp(path, "/exit3") == 0) {
        exit(3);
    } else if (strcmp(path, "/loop") == 0) {
        volatile unsigned long spin = 0;
        for (;;) spin++;
    } else if (strcmp(path, "/mem") == 0) {
        for (;;) {
            char *p = malloc(1 << 20);
            if (!p) abort();
            memset(p, 1, 1 << 20);
            kept = p; /* a global the optimiser cannot see through, so the allocation is real */
        }
    } else if (strcmp(path, "/hop") == 0) {
        printf("Content-Type: text/plain\nTransfer-Encoding: chunked\nConnection: close\nContent-Length: 99\n"
               "X-Utf8: h\xc3\xa9llo\n\nbody");
    } else if (strcmp(path, "/remember") == 0) {
        static char note[256];
        enum { BLOCK = 1 << 16 };
        unsigned char *heap = malloc(BLOCK);
        size_t marked = 0; /* bytes still holding an earlier request's 0xAB */
        for (size_t i = 0; heap && i < BLOCK; i++) marked += heap[i] == 0xAB;
        printf("Content-Type: text/plain\n\nnote=%s\nmarked=%zu\n", note, marked);
        snprintf(note, sizeof note, "%s", env_or("QUERY_STRING", ""));
        if (heap) memset(heap, 0xAB, BLOCK);
        kept = (char *)heap;
    } else if (strcmp(path, "/stderr") == 0) {
        fprintf(stderr, "guest says hello on stderr\n");
        printf("Content-Type: text/plain\n\nlogged\n");
    } else {
        printf("Content-Type: text/plain\n\nhello from probe\n");
    }
    return 0;
}

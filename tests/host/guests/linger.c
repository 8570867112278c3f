/* A WAGI test guest that takes its time: it reads the whole request body, then sleeps the number of
 * milliseconds given as the query string (in 1 ms naps, so an epoch deadline still interrupts it and
 * it costs no CPU), then answers 200 with the body's size. The lifecycle tests use it to keep
 * requests in flight while the host is told to stop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long elapsed_ms(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000L + (now.tv_nsec - since->tv_nsec) / 1000000L;
}

int main(void) {
    static char buffer[65536];
    const char *query = getenv("QUERY_STRING");
    long ms = query ? atol(query) : 0;
    size_t total = 0, n;
    while ((n = fread(buffer, 1, sizeof buffer, stdin)) > 0) total += n;
    struct timespec start, nap = {0, 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (elapsed_ms(&start) < ms) nanosleep(&nap, NULL);
    printf("Content-Type: text/plain\n\nslept %ld ms, read %zu bytes\n", ms, total);
    return 0;
}

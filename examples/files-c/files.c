/*
 * files: a WAGI guest that serves files from the directory the manifest mounts at /static
 * (`files = [{ source = "static", destination = "/static" }]`). PATH_INFO names the file:
 * GET /files/hello.txt reads /static/hello.txt. The guest sees nothing else of the host's file
 * system: the mount is a read-only WASI preopen, so "/etc/passwd" simply does not exist for it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>

static const char *content_type(const char *path) {
    const char *dot = strrchr(path, '.');
    if (!dot) return "application/octet-stream";
    if (strcmp(dot, ".txt") == 0) return "text/plain; charset=utf-8";
    if (strcmp(dot, ".html") == 0) return "text/html; charset=utf-8";
    if (strcmp(dot, ".json") == 0) return "application/json";
    return "application/octet-stream";
}

static int answer(const char *status, const char *message) {
    printf("Status: %s\nContent-Type: text/plain; charset=utf-8\n\n%s\n", status, message);
    return 0;
}

int main(void) {
    const char *info = getenv("PATH_INFO");
    char path[1024];
    if (!info || info[0] == '\0' || strcmp(info, "/") == 0) info = "/index.html";
    if (strstr(info, "..")) return answer("400 Bad Request", "no '..' in file paths");
    if (snprintf(path, sizeof path, "/static%s", info) >= (int)sizeof path)
        return answer("414 URI Too Long", "path too long");

    int fd = open(path, O_RDONLY);
    if (fd < 0) return answer("404 Not Found", "no such file");

    printf("Content-Type: %s\n\n", content_type(path));
    fflush(stdout);
    char buf[16 * 1024];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        if (write(1, buf, (size_t)n) != n) return 1;
    }
    close(fd);
    return 0;
}

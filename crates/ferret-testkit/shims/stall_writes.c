/* An LD_PRELOAD shim that makes a process's writes to one file hang, as
 * writes to a file on a hung mount do. While the file named by
 * FERRET_TEST_STALL_WHILE exists, every pwrite to a descriptor whose path
 * ends with FERRET_TEST_STALL_PATH waits; removing the file releases it.
 * Writes to every other file pass straight through. The daemon's log writer
 * writes with std's write_at, which calls libc's pwrite64. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static int stalled_fd(int fd) {
    const char *want = getenv("FERRET_TEST_STALL_PATH");
    const char *flag = getenv("FERRET_TEST_STALL_WHILE");
    if (!want || !flag || access(flag, F_OK) != 0)
        return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0)
        return 0;
    path[n] = 0;
    size_t lw = strlen(want);
    return (size_t)n >= lw && strcmp(path + n - lw, want) == 0;
}

static void wait_while_stalled(int fd) {
    if (!stalled_fd(fd))
        return;
    const char *flag = getenv("FERRET_TEST_STALL_WHILE");
    struct timespec step = {0, 5 * 1000 * 1000};
    while (access(flag, F_OK) == 0)
        nanosleep(&step, NULL);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    wait_while_stalled(fd);
    return real(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    wait_while_stalled(fd);
    return real(fd, buf, count, offset);
}

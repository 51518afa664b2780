/* An LD_PRELOAD shim that makes fchown fail with EPERM, as it does for a
 * daemon without CAP_CHOWN or on a file system that refuses ownership
 * changes, for descriptors whose path ends with FERRET_TEST_FAIL_FCHOWN_PATH.
 * Every other fchown passes straight through. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int failing_fd(int fd) {
    const char *want = getenv("FERRET_TEST_FAIL_FCHOWN_PATH");
    if (!want)
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

int fchown(int fd, uid_t owner, gid_t group) {
    static int (*real)(int, uid_t, gid_t);
    if (!real)
        real = (int (*)(int, uid_t, gid_t))dlsym(RTLD_NEXT, "fchown");
    if (failing_fd(fd)) {
        errno = EPERM;
        return -1;
    }
    return real(fd, owner, group);
}

/*
 * The LTTng-UST side of benches/compare.sh: writes COUNT events of an
 * integer and a 5-byte string on THREADS threads and prints, as one JSON
 * line, each thread's ns per event (averaged over threads) and the wall ns
 * per event, the figures `ferret emit --json` prints.
 *
 * usage: lttng_bench enabled|disabled|empty COUNT [THREADS]
 *
 * "enabled" and "disabled" run the same tracepoint loop; which one it is
 * depends only on whether a session enables ferret_bench:* while it runs.
 * "empty" runs the loop with nothing in it, as the floor for the disabled
 * figure.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferret_bench_tp.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct work {
    int mode; /* 0 tracepoint, 1 empty loop */
    uint64_t first;
    uint64_t count;
    uint64_t elapsed_ns;
    pthread_barrier_t *start;
};

static void *run(void *arg)
{
    struct work *w = arg;
    pthread_barrier_wait(w->start);
    uint64_t t0 = now_ns();
    if (w->mode == 0) {
        for (uint64_t i = 0; i < w->count; i++)
            lttng_ust_tracepoint(ferret_bench, sample, w->first + i, "hello");
    } else {
        for (uint64_t i = 0; i < w->count; i++)
            /* Keeps the compiler from deleting the loop, and nothing else. */
            __asm__ volatile("" : : "r"(i) : "memory");
    }
    w->elapsed_ns = now_ns() - t0;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s enabled|disabled|empty COUNT [THREADS]\n", argv[0]);
        return 2;
    }
    int mode = strcmp(argv[1], "empty") == 0 ? 1 : 0;
    uint64_t count = strtoull(argv[2], NULL, 10);
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    if (threads < 1 || threads > 256 || count == 0) {
        fprintf(stderr, "bad COUNT or THREADS\n");
        return 2;
    }
    pthread_t tid[256];
    struct work w[256];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    uint64_t per = count / (uint64_t)threads;
    for (int t = 0; t < threads; t++) {
        w[t] = (struct work){ mode, per * (uint64_t)t, t == threads - 1 ? count - per * (uint64_t)t : per, 0, &start };
        pthread_create(&tid[t], NULL, run, &w[t]);
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = now_ns();
    double per_thread = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        per_thread += (double)w[t].elapsed_ns / (double)w[t].count;
    }
    uint64_t wall = now_ns() - t0;
    printf("{\"mode\":\"%s\",\"count\":%llu,\"threads\":%d,\"ns_per_event\":%.3f,\"wall_ns_per_event\":%.3f}\n",
           argv[1], (unsigned long long)count, threads, per_thread / threads, (double)wall / (double)count);
    return 0;
}

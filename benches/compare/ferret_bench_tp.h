/*
 * The LTTng-UST tracepoint provider of the comparison: one event with an
 * integer and a short string, the shape `ferret emit` writes, so that both
 * systems record the same payload.
 */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER ferret_bench

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./ferret_bench_tp.h"

#if !defined(FERRET_BENCH_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define FERRET_BENCH_TP_H

#include <lttng/tracepoint.h>
#include <stdint.h>

LTTNG_UST_TRACEPOINT_EVENT(
    ferret_bench,
    sample,
    LTTNG_UST_TP_ARGS(uint64_t, seq, const char *, msg),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint64_t, seq, seq)
        lttng_ust_field_string(msg, msg)
    )
)

#endif

#include <lttng/tracepoint-event.h>

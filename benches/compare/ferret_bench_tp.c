/* Instantiates the tracepoint provider declared in ferret_bench_tp.h. */
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "ferret_bench_tp.h"

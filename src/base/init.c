/*
 * Process-wide set-up of the base library, and time helpers.
 */
#include <time.h>

#include "lupe/base.h"

lupe_status lupe_base_init(void)
{
    lupe_json_use_funnel();
    return lupe_crypto_init();
}

int64_t lupe_time_unix(void)
{
    return (int64_t)time(NULL);
}

double lupe_time_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void lupe_time_iso(int64_t t, char *out, size_t outsz)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(out, outsz, "?");
        return;
    }
    strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

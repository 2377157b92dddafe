/*
 * `lupe version`: the version, the commit it was built from, the build type
 * and the versions of the libraries it links, for bug reports.
 */
#include <jansson.h>
#include <jpeglib.h>
#include <png.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cli/cli.h"

#ifndef LUPE_GIT_COMMIT
#define LUPE_GIT_COMMIT "unknown"
#endif
#ifndef LUPE_BUILD_TYPE
#define LUPE_BUILD_TYPE "unknown"
#endif

int cmd_version(cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    if (argc > 1) {
        int rc = cli_getopt_help("version", argc, argv);
        if (rc >= 0) return rc;
        return cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    }
    printf("lupe %s\n", LUPE_VERSION);
    printf("commit     %s\n", LUPE_GIT_COMMIT);
    printf("build      %s, %s, %s %s\n", LUPE_BUILD_TYPE, __VERSION__, __DATE__, __TIME__);
    printf("schema     workspace version %d\n", lupe_ws_schema_latest());
    printf("libraries  sqlite %s, libjpeg-turbo (jpeglib %d), libpng %s, libsodium %s, jansson %s\n",
           sqlite3_libversion(), JPEG_LIB_VERSION, png_get_libpng_ver(NULL), sodium_version_string(),
           JANSSON_VERSION);
    return EXIT_OK;
}

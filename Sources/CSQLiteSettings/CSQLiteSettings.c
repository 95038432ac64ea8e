#include <sqlite3.h>
#include "CSQLiteSettings.h"

int usagebox_sqlite_multithread_without_memstatus(void) {
    int rc = sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    if (rc != SQLITE_OK) return rc;
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

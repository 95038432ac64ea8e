#ifndef CSQLITESETTINGS_H
#define CSQLITESETTINGS_H

/// Puts SQLite in multi-thread mode without memory statistics. `sqlite3_config` is variadic, which
/// Swift cannot call, hence this one C function. Must run before SQLite initializes (the
/// executable calls it first thing); returns SQLite's result code (0 when applied).
int usagebox_sqlite_multithread_without_memstatus(void);

#endif

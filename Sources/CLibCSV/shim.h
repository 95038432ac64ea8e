#ifndef USAGEBOX_CLIBCSV_SHIM_H
#define USAGEBOX_CLIBCSV_SHIM_H
#include <stddef.h>
#include <csv.h>
#endif

// Declarations only: libFuzzer's driver is linked in by -sanitize=fuzzer (scripts/fuzz).
#include "CFuzzDriver.h"

#ifndef USAGEBOX_CLIBXML2_SHIM_H
#define USAGEBOX_CLIBXML2_SHIM_H
#include <libxml/xmlversion.h>
/* Debian builds libxml2 with ICU; its ICU headers clash with Foundation's private ICU copy.
   The reader never needs ICU converters, so hide them. */
#undef LIBXML_ICU_ENABLED
#include <libxml/xmlreader.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
static inline const char *usagebox_libxml_version(void) { return LIBXML_DOTTED_VERSION; }
#endif

/* version.c — easyrec_version(): the version of the linked library (easyrec.h). */
#include "easyrec.h"

const char *easyrec_version(void) { return EASYREC_VERSION; }

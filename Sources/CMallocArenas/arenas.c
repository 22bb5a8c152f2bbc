#include "CMallocArenas.h"

#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static int arena_cap = 0;

__attribute__((constructor)) static void parley_cap_malloc_arenas(void) {
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    if (getenv("MALLOC_ARENA_MAX") == NULL && mallopt(M_ARENA_MAX, 2) == 1) {
        arena_cap = 2;
    }
#endif
}

int parley_malloc_arena_cap(void) { return arena_cap; }

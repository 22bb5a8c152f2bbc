#ifndef C_MALLOC_ARENAS_H
#define C_MALLOC_ARENAS_H

/// The cap this process put on glibc's allocation arenas before `main` (mallopt M_ARENA_MAX, in a constructor: the
/// setting only holds for arenas made after it, so before any thread starts), or 0 when it did not: `MALLOC_ARENA_MAX`
/// was set in the environment (glibc's own setting decides), or the C library is not glibc.
int parley_malloc_arena_cap(void);

#endif

/*
 * arena.c: output buffers for batch results, recycled instead of freed.
 *
 * Batch outputs are large (a 10,000-item batch is megabytes). Fresh memory
 * from the OS costs a page fault per 4 KiB on first write, which measured
 * here at several times the cost of the encryption itself; glibc hands
 * large freed blocks straight back to the OS. Keeping a few released arenas
 * for reuse removes that. Arenas that held plaintext are wiped on release.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gcm_internal.h"

#define ARENA_HEADER 64                     /* keeps the payload 64-byte aligned */
#define ARENA_SLOTS 8
#define ARENA_MAX_CACHED ((size_t)64 << 20) /* per block; larger ones are freed */

struct arena_header {
    size_t capacity;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static void *pool[ARENA_SLOTS];

uint8_t *kms_arena_new(size_t size)
{
    if (size > SIZE_MAX - ARENA_HEADER)
        return NULL;
    void *block = NULL;
    pthread_mutex_lock(&pool_lock);
    /* Smallest cached block that fits without wasting more than half. */
    int best = -1;
    for (int i = 0; i < ARENA_SLOTS; i++) {
        if (!pool[i])
            continue;
        size_t cap = ((struct arena_header *)pool[i])->capacity;
        if (cap >= size && cap / 2 <= size &&
            (best < 0 || cap < ((struct arena_header *)pool[best])->capacity))
            best = i;
    }
    if (best >= 0) {
        block = pool[best];
        pool[best] = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    if (!block) {
        block = aligned_alloc(64, (size + ARENA_HEADER + 63) & ~(size_t)63);
        if (!block)
            return NULL;
        ((struct arena_header *)block)->capacity = size;
    }
    return (uint8_t *)block + ARENA_HEADER;
}

void kms_arena_release(uint8_t *payload, size_t used, int wipe)
{
    if (!payload)
        return;
    void *block = payload - ARENA_HEADER;
    size_t cap = ((struct arena_header *)block)->capacity;
    if (wipe)
        kms_wipe(payload, used < cap ? used : cap);
    if (cap <= ARENA_MAX_CACHED) {
        pthread_mutex_lock(&pool_lock);
        for (int i = 0; i < ARENA_SLOTS; i++) {
            if (!pool[i]) {
                pool[i] = block;
                block = NULL;
                break;
            }
        }
        pthread_mutex_unlock(&pool_lock);
    }
    free(block); /* NULL when it went back to the pool */
}

void kms_arena_trim(void)
{
    void *drop[ARENA_SLOTS];
    pthread_mutex_lock(&pool_lock);
    for (int i = 0; i < ARENA_SLOTS; i++) {
        drop[i] = pool[i];
        pool[i] = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    for (int i = 0; i < ARENA_SLOTS; i++)
        free(drop[i]);
}

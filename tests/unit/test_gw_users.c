/* test_gw_users.c: the user index (gw_users.c): several connections per user, removal from the
 * head, middle and tail of a user's list, entries freed with the last connection, double
 * removal, and a few thousand users. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gw_users.h"

static size_t walk(const gw_users *u, const char *sub)
{
    size_t n = 0;
    for (gw_user_link *l = gw_users_first(u, sub); l; l = l->next) {
        CHECK_STR(gw_users_sub(l), sub);
        n++;
    }
    return n;
}

static void test_links(void)
{
    gw_users u;
    gw_user_link a[3] = {0}, b = {0};
    CHECK(gw_users_init(&u) == 0);
    CHECK(gw_users_first(&u, "alice") == NULL);
    CHECK(gw_users_count(&u, "alice") == 0);
    for (int i = 0; i < 3; i++)
        CHECK(gw_users_add(&u, "alice", &a[i]) == 0);
    CHECK(gw_users_add(&u, "bob", &b) == 0);
    CHECK(gw_users_count(&u, "alice") == 3 && walk(&u, "alice") == 3);
    CHECK(gw_users_count(&u, "bob") == 1 && walk(&u, "bob") == 1);
    CHECK(u.links == 4);
    gw_users_remove(&u, &a[1]); /* middle */
    CHECK(walk(&u, "alice") == 2);
    gw_users_remove(&u, &a[2]); /* head (added last) */
    CHECK(walk(&u, "alice") == 1 && gw_users_first(&u, "alice") == &a[0]);
    gw_users_remove(&u, &a[2]); /* twice: a no-op */
    CHECK(u.links == 2);
    gw_users_remove(&u, &a[0]);
    CHECK(gw_users_first(&u, "alice") == NULL && gw_users_count(&u, "alice") == 0);
    CHECK(gw_users_sub(&a[0]) == NULL);
    /* the user comes back */
    CHECK(gw_users_add(&u, "alice", &a[0]) == 0 && walk(&u, "alice") == 1);
    gw_users_remove(&u, &a[0]);
    gw_users_remove(&u, &b);
    CHECK(u.links == 0);
    gw_users_free(&u);
}

static void test_many(void)
{
    enum { USERS = 3000, PER = 3 };
    gw_users u;
    gw_user_link *l = calloc((size_t)USERS * PER, sizeof(*l));
    char sub[32];
    CHECK(l != NULL && gw_users_init(&u) == 0);
    if (!l)
        return;
    for (int i = 0; i < USERS * PER; i++) {
        snprintf(sub, sizeof(sub), "user-%d", i % USERS);
        CHECK(gw_users_add(&u, sub, &l[i]) == 0);
    }
    size_t bad = 0;
    for (int i = 0; i < USERS; i++) {
        snprintf(sub, sizeof(sub), "user-%d", i);
        bad += gw_users_count(&u, sub) != PER;
    }
    CHECK(bad == 0);
    for (int i = 0; i < USERS * PER; i += 2)
        gw_users_remove(&u, &l[i]);
    gw_users_free(&u); /* frees the entries still held (ASan checks for leaks) */
    free(l);
}

int main(void)
{
    RUN(test_links);
    RUN(test_many);
    return check_summary();
}

/* What shmbus-bench leaves out on Windows, each saying so: the peers that
 * need Linux (iceoryx, and NATS and the bridge, whose xport files start
 * and fork servers the POSIX way) are skipped with a note, as on Linux
 * when one is not built. See docs/windows.md. */
#include <stdio.h>

#include "xport_bridge.h"
#include "xport_iox.h"
#include "xport_nats.h"

#define NOT_ON_WINDOWS "not ported to Windows (docs/windows.md)"

static const char *not_on_windows(void) {
  return NOT_ON_WINDOWS;
}

const struct bx_ops bx_iox = {
    .name = "iceoryx",
    .flags = BX_F_FANOUT | BX_F_LATENCY,
    .missing = not_on_windows,
};

void bx_iox_setup(bool latency, const size_t *sizes, unsigned nsizes, const unsigned *subs,
                  unsigned nsubs, unsigned slots) {
  (void)latency;
  (void)sizes;
  (void)nsizes;
  (void)subs;
  (void)nsubs;
  (void)slots;
}

void bx_iox_teardown(void) {
}

const struct bx_ops bx_nats = {
    .name = "nats",
    .flags = BX_F_FANOUT,
    .missing = not_on_windows,
};

void bx_nats_setup(void) {
}

void bx_nats_teardown(void) {
}

const char *bx_nats_url(void) {
  return NULL;
}

const struct bx_ops bx_bridge = {
    .name = "bridge",
    .flags = BX_F_FANOUT,
    .missing = not_on_windows,
};

void bx_bridge_setup(const char *bridge_path, const char *daemon_path) {
  (void)bridge_path;
  (void)daemon_path;
}

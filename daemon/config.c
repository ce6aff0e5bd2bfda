/* config: permission rules, loaded from a file and checked on every open.
 * See config.h for the file format. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"

#define CONFIG_LINE_MAX 4096u /* longer lines are an error, not a surprise */
#define CONFIG_SEG_MAX 128u   /* a 255-byte name has at most 128 segments */
#define CONFIG_NAME_MAX 255u

enum config_who_kind { CONFIG_WHO_ANY, CONFIG_WHO_UID, CONFIG_WHO_GID };

struct config_who {
  enum config_who_kind kind;
  struct host_principal id; /* CONFIG_WHO_UID: a user; CONFIG_WHO_GID: a group */
};

struct config_rule {
  bool allow;
  unsigned ops;  /* CONFIG_OP_* */
  char *pattern; /* segments separated by NUL bytes, nseg of them */
  unsigned nseg;
  struct config_who *who;
  size_t nwho;
  unsigned line;
};

struct config {
  char *path; /* NULL for the default config */
  uint32_t owner;
  struct config_limits limits;
  struct config_rule *rules;
  size_t n;
  size_t cap;
  bool uses_groups;
};

struct config *config_new_default(uint32_t owner) {
  struct config *cfg = calloc(1, sizeof(*cfg));
  if (cfg != NULL) {
    cfg->owner = owner;
    config_limits_default(&cfg->limits);
  }
  return cfg;
}

void config_limits_default(struct config_limits *l) {
  l->topics = CONFIG_LIMIT_TOPICS;
  l->records = CONFIG_LIMIT_RECORDS;
  l->memory = CONFIG_LIMIT_MEMORY;
  l->region = CONFIG_LIMIT_REGION;
  l->rate = CONFIG_LIMIT_RATE;
  l->burst = CONFIG_LIMIT_BURST;
  l->connections = CONFIG_LIMIT_CONNECTIONS;
  l->clients = CONFIG_LIMIT_CLIENTS;
  l->reserved = CONFIG_LIMIT_RESERVED;
  l->hello_ms = CONFIG_LIMIT_HELLO_MS;
  l->deadline_ms = CONFIG_LIMIT_DEADLINE_MS;
  l->unread = CONFIG_LIMIT_UNREAD;
  l->unread_bytes = CONFIG_LIMIT_UNREAD_BYTES;
  l->retained = CONFIG_LIMIT_RETAINED;
  l->retained_memory = CONFIG_LIMIT_RETAINED_MEMORY;
}

int config_limit_override(struct config *cfg, const char *arg, char *err, size_t errlen) {
  char name[32];
  const char *eq = strchr(arg, '=');

  if (eq == NULL || (size_t)(eq - arg) >= sizeof(name)) {
    snprintf(err, errlen, "--limit needs NAME=VALUE, not \"%s\"", arg);
    return -EINVAL;
  }
  memcpy(name, arg, (size_t)(eq - arg));
  name[eq - arg] = '\0';
  return config_limit_set(&cfg->limits, name, eq + 1, err, errlen);
}

const struct config_limits *config_limits(const struct config *cfg) {
  return &cfg->limits;
}

int config_limit_set(struct config_limits *l, const char *name, const char *value, char *err,
                     size_t errlen) {
  static const struct {
    const char *name;
    size_t off;
    bool size;
  } names[] = {
      {"topics", offsetof(struct config_limits, topics), false},
      {"records", offsetof(struct config_limits, records), false},
      {"memory", offsetof(struct config_limits, memory), true},
      {"region", offsetof(struct config_limits, region), true},
      {"rate", offsetof(struct config_limits, rate), false},
      {"burst", offsetof(struct config_limits, burst), false},
      {"connections", offsetof(struct config_limits, connections), false},
      {"clients", offsetof(struct config_limits, clients), false},
      {"reserved", offsetof(struct config_limits, reserved), false},
      {"hello_ms", offsetof(struct config_limits, hello_ms), false},
      {"deadline_ms", offsetof(struct config_limits, deadline_ms), false},
      {"unread", offsetof(struct config_limits, unread), false},
      {"unread_bytes", offsetof(struct config_limits, unread_bytes), true},
      {"retained", offsetof(struct config_limits, retained), false},
      {"retained_memory", offsetof(struct config_limits, retained_memory), true},
  };
  unsigned long long v;
  unsigned shift = 0;
  char *end;
  size_t i;

  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcmp(name, names[i].name) == 0)
      break;
  if (i == sizeof(names) / sizeof(names[0])) {
    snprintf(err, errlen,
             "unknown limit \"%s\" (topics, records, memory, region, rate, burst, connections, "
             "clients, reserved, hello_ms, unread, unread_bytes, retained, retained_memory or "
             "deadline_ms)",
             name);
    return -EINVAL;
  }
  errno = 0;
  v = strtoull(value, &end, 10);
  if (names[i].size && *end != '\0' && end[1] == '\0') {
    shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
    if (shift != 0)
      end++;
  }
  if (errno != 0 || end == value || *end != '\0' || value[0] == '-' ||
      (shift != 0 && v > (UINT64_MAX >> shift))) {
    snprintf(err, errlen, "limit %s needs a number%s, not \"%s\"", name,
             names[i].size ? " of bytes (K, M or G suffix allowed)" : "", value);
    return -EINVAL;
  }
  *(uint64_t *)(void *)((char *)l + names[i].off) = (uint64_t)v << shift;
  return 0;
}

void config_free(struct config *cfg) {
  size_t i;

  if (cfg == NULL)
    return;
  for (i = 0; i < cfg->n; i++) {
    free(cfg->rules[i].pattern);
    free(cfg->rules[i].who);
  }
  free(cfg->rules);
  free(cfg->path);
  free(cfg);
}

size_t config_rule_count(const struct config *cfg) {
  return cfg->n;
}

bool config_uses_groups(const struct config *cfg) {
  return cfg->uses_groups;
}

static bool config_seg_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || ch == '.' || ch == '-';
}

/* Splits a pattern in place into NUL-separated segments and checks each:
 * `*`, `**`, or the characters a topic segment may hold ('$' only to open
 * the first segment, as in "$sys"). Returns the segment count or 0. */
static unsigned config_split_pattern(char *p) {
  size_t len = strlen(p);
  unsigned nseg = 0;
  char *seg = p;
  size_t i;

  if (len == 0 || len > CONFIG_NAME_MAX)
    return 0;
  for (i = 0; i <= len; i++) {
    if (p[i] != '/' && p[i] != '\0')
      continue;
    p[i] = '\0';
    if (seg[0] == '\0')
      return 0; /* empty segment: "a//b", "/a" or "a/" */
    if (strcmp(seg, "*") != 0 && strcmp(seg, "**") != 0) {
      const char *c;
      for (c = seg; *c != '\0'; c++) {
        if (config_seg_char(*c))
          continue;
        if (*c == '$' && nseg == 0 && c == seg && c[1] != '\0')
          continue;
        return 0;
      }
    }
    nseg++;
    seg = p + i + 1;
  }
  return nseg;
}

/* Parses an unsigned id ("1000"); rejects signs, junk and overflow. */
static bool config_parse_id(const char *s, uint32_t *out) {
  unsigned long v;
  char *end;

  if (*s < '0' || *s > '9')
    return false;
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v >= UINT32_MAX)
    return false;
  *out = (uint32_t)v;
  return true;
}

/* Resolves a WHO's user or group (`what`, for the error) `name` with
 * `resolve`. Returns 0 or -EINVAL with `err` set. */
static int config_resolve(const char *what, const char *name,
                          int (*resolve)(const char *, struct host_principal *),
                          struct host_principal *p, char *err, size_t errlen) {
  int rv = resolve(name, p);

  if (rv == 0)
    return 0;
  if (rv == -EINVAL)
    snprintf(err, errlen, "\"%s\" is not a %s (another kind of account, or a bad SID)", name, what);
  else
    snprintf(err, errlen, "unknown %s \"%s\"", what, name);
  return -EINVAL;
}

/* Parses one WHO entry. Returns 0 or -EINVAL with `err` set. */
static int config_parse_who(struct config *cfg, const char *tok, struct config_who *who, char *err,
                            size_t errlen) {
  uint32_t id;

  memset(who, 0, sizeof(*who));
  if (strcmp(tok, "*") == 0) {
    who->kind = CONFIG_WHO_ANY;
    return 0;
  }
  if (strncmp(tok, "uid:", 4) == 0) {
    who->kind = CONFIG_WHO_UID;
    if (config_parse_id(tok + 4, &id)) {
      if (host_principal_uid(id, &who->id) == 0)
        return 0;
      snprintf(err, errlen, "%s: this system names users by name or SID: use user:NAME", tok);
      return -EINVAL;
    }
  } else if (strncmp(tok, "gid:", 4) == 0) {
    who->kind = CONFIG_WHO_GID;
    cfg->uses_groups = true;
    if (config_parse_id(tok + 4, &id)) {
      if (host_principal_gid(id, &who->id) == 0)
        return 0;
      snprintf(err, errlen, "%s: this system names groups by name or SID: use group:NAME", tok);
      return -EINVAL;
    }
  } else if (strncmp(tok, "user:", 5) == 0) {
    who->kind = CONFIG_WHO_UID;
    return config_resolve("user", tok + 5, host_principal_user, &who->id, err, errlen);
  } else if (strncmp(tok, "group:", 6) == 0) {
    who->kind = CONFIG_WHO_GID;
    cfg->uses_groups = true;
    return config_resolve("group", tok + 6, host_principal_group, &who->id, err, errlen);
  }
  snprintf(err, errlen, "bad WHO \"%s\" (expected *, uid:N, gid:N, user:NAME or group:NAME)", tok);
  return -EINVAL;
}

/* Parses one line into a rule appended to cfg. Blank and comment lines add
 * nothing. Returns 0, -EINVAL with `err` set, or -ENOMEM. */
static int config_parse_line(struct config *cfg, char *line, unsigned lineno, char *err,
                             size_t errlen) {
  struct config_rule rule;
  char *save = NULL;
  char *tok;
  char *hash = strchr(line, '#');
  int rv;

  memset(&rule, 0, sizeof(rule));
  rule.line = lineno;
  if (hash != NULL)
    *hash = '\0';
  if ((tok = strtok_r(line, " \t\r\n", &save)) == NULL)
    return 0;
  if (strcmp(tok, "limit") == 0) {
    char *name = strtok_r(NULL, " \t\r\n", &save);
    char *value = name != NULL ? strtok_r(NULL, " \t\r\n", &save) : NULL;
    if (value == NULL || strtok_r(NULL, " \t\r\n", &save) != NULL) {
      snprintf(err, errlen, "expected limit NAME VALUE");
      return -EINVAL;
    }
    return config_limit_set(&cfg->limits, name, value, err, errlen);
  }
  if (strcmp(tok, "allow") == 0) {
    rule.allow = true;
  } else if (strcmp(tok, "deny") != 0) {
    snprintf(err, errlen, "expected allow, deny or limit, found \"%s\"", tok);
    return -EINVAL;
  }
  tok = strtok_r(NULL, " \t\r\n", &save);
  if (tok != NULL && strcmp(tok, "pub") == 0) {
    rule.ops = CONFIG_OP_PUB;
  } else if (tok != NULL && strcmp(tok, "sub") == 0) {
    rule.ops = CONFIG_OP_SUB;
  } else if (tok != NULL && strcmp(tok, "any") == 0) {
    rule.ops = CONFIG_OP_PUB | CONFIG_OP_SUB;
  } else if (tok != NULL && strcmp(tok, "create") == 0) {
    rule.ops = CONFIG_OP_CREATE;
  } else if (tok != NULL && strcmp(tok, "retain") == 0) {
    rule.ops = CONFIG_OP_RETAIN;
  } else if (tok != NULL && strcmp(tok, "remove") == 0) {
    rule.ops = CONFIG_OP_REMOVE;
  } else {
    snprintf(err, errlen, "expected pub, sub, any, create, retain or remove after %s",
             rule.allow ? "allow" : "deny");
    return -EINVAL;
  }
  if ((tok = strtok_r(NULL, " \t\r\n", &save)) == NULL) {
    snprintf(err, errlen, "missing topic pattern");
    return -EINVAL;
  }
  if ((rule.pattern = strdup(tok)) == NULL)
    return -ENOMEM;
  if ((rule.nseg = config_split_pattern(rule.pattern)) == 0) {
    snprintf(err, errlen, "bad topic pattern \"%s\" (segments of [A-Za-z0-9_.-], * or **)", tok);
    rv = -EINVAL;
    goto fail;
  }
  while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
    struct config_who *w = realloc(rule.who, (rule.nwho + 1) * sizeof(*w));
    if (w == NULL) {
      rv = -ENOMEM;
      goto fail;
    }
    rule.who = w;
    if ((rv = config_parse_who(cfg, tok, &rule.who[rule.nwho], err, errlen)) < 0)
      goto fail;
    rule.nwho++;
  }
  if (rule.nwho == 0) {
    snprintf(err, errlen, "missing WHO (*, uid:N, gid:N, user:NAME or group:NAME)");
    rv = -EINVAL;
    goto fail;
  }
  if (cfg->n == cfg->cap) {
    size_t cap = cfg->cap != 0 ? cfg->cap * 2 : 8;
    struct config_rule *r = realloc(cfg->rules, cap * sizeof(*r));
    if (r == NULL) {
      rv = -ENOMEM;
      goto fail;
    }
    cfg->rules = r;
    cfg->cap = cap;
  }
  cfg->rules[cfg->n++] = rule;
  return 0;

fail:
  free(rule.pattern);
  free(rule.who);
  return rv;
}

int config_load(const char *path, uint32_t owner, struct config **out, char *err, size_t errlen) {
  struct config *cfg = NULL;
  char msg[256];
  char *line = NULL;
  size_t linecap = 0;
  unsigned lineno = 0;
  FILE *f = NULL;
  long n;
  int rv;

  *out = NULL;
  err[0] = '\0';
  if ((f = host_config_open(path)) == NULL) {
    rv = -errno;
    snprintf(err, errlen, "%s: %s", path, strerror(-rv));
    return rv;
  }
  if ((cfg = config_new_default(owner)) == NULL || (cfg->path = strdup(path)) == NULL) {
    rv = -ENOMEM;
    snprintf(err, errlen, "%s: out of memory", path);
    goto fail;
  }
  errno = 0;
  while ((n = host_getline(&line, &linecap, f)) >= 0) {
    lineno++;
    if ((size_t)n > CONFIG_LINE_MAX) {
      snprintf(err, errlen, "%s:%u: line longer than %u bytes", path, lineno, CONFIG_LINE_MAX);
      rv = -EINVAL;
      goto fail;
    }
    if (memchr(line, '\0', (size_t)n) != NULL) {
      snprintf(err, errlen, "%s:%u: NUL byte in line", path, lineno);
      rv = -EINVAL;
      goto fail;
    }
    msg[0] = '\0';
    if ((rv = config_parse_line(cfg, line, lineno, msg, sizeof(msg))) < 0) {
      snprintf(err, errlen, "%s:%u: %s", path, lineno, rv == -ENOMEM ? "out of memory" : msg);
      goto fail;
    }
    errno = 0;
  }
  if (ferror(f)) {
    rv = errno != 0 ? -errno : -EIO;
    snprintf(err, errlen, "%s: read error: %s", path, strerror(-rv));
    goto fail;
  }
  free(line);
  fclose(f);
  *out = cfg;
  return 0;

fail:
  free(line);
  fclose(f);
  config_free(cfg);
  return rv;
}

/* Matches topic segments against a rule's pattern: `*` is one segment,
 * `**` any run of segments. The classic single-backtrack wildcard walk:
 * on a mismatch, resume after the last `**` with one more segment eaten
 * by it. O(segments^2) at worst, for at most 128 segments. */
static bool config_match(const struct config_rule *r, const char *const *tseg, const size_t *tlen,
                         unsigned nt) {
  const char *pseg[CONFIG_SEG_MAX];
  unsigned np = 0;
  const char *p = r->pattern;
  unsigned pi = 0;
  unsigned ti = 0;
  int star_p = -1;
  unsigned star_t = 0;

  for (np = 0; np < r->nseg && np < CONFIG_SEG_MAX; np++) {
    pseg[np] = p;
    p += strlen(p) + 1;
  }
  while (ti < nt) {
    if (pi < np && strcmp(pseg[pi], "**") == 0) {
      star_p = (int)pi++;
      star_t = ti;
      continue;
    }
    if (pi < np && (strcmp(pseg[pi], "*") == 0 ||
                    (strlen(pseg[pi]) == tlen[ti] && memcmp(pseg[pi], tseg[ti], tlen[ti]) == 0))) {
      pi++;
      ti++;
      continue;
    }
    if (star_p >= 0) {
      pi = (unsigned)star_p + 1;
      ti = ++star_t;
      continue;
    }
    return false;
  }
  while (pi < np && strcmp(pseg[pi], "**") == 0)
    pi++;
  return pi == np;
}

static bool config_who_matches(const struct config_rule *r, const struct config_cred *c) {
  size_t i;

  for (i = 0; i < r->nwho; i++) {
    const struct config_who *w = &r->who[i];
    switch (w->kind) {
    case CONFIG_WHO_ANY:
      return true;
    case CONFIG_WHO_UID:
      if (host_principal_is_user(&w->id, c->uid, c->peer))
        return true;
      break;
    case CONFIG_WHO_GID:
      if (host_principal_has_member(&w->id, c->gid, c->groups, c->ngroups, c->peer))
        return true;
      break;
    }
  }
  return false;
}

bool config_check(const struct config *cfg, const char *topic, unsigned op,
                  const struct config_cred *cred, char *why, size_t whylen) {
  int rv = config_decide(cfg, topic, op, cred, why, whylen);

  if (rv >= 0)
    return rv == 1;
  return cred->uid == cfg->owner || host_uid_is_superuser(cred->uid);
}

int config_decide(const struct config *cfg, const char *topic, unsigned op,
                  const struct config_cred *cred, char *why, size_t whylen) {
  const char *tseg[CONFIG_SEG_MAX];
  size_t tlen[CONFIG_SEG_MAX];
  unsigned nt = 0;
  const char *s = topic;
  size_t i;

  /* Topic names were validated before (no empty segment, <= 255 bytes),
   * so they have at most 128 segments; stop there anyway. */
  while (nt < CONFIG_SEG_MAX) {
    const char *slash = strchr(s, '/');
    tseg[nt] = s;
    tlen[nt] = slash != NULL ? (size_t)(slash - s) : strlen(s);
    nt++;
    if (slash == NULL)
      break;
    s = slash + 1;
  }
  for (i = 0; i < cfg->n; i++) {
    const struct config_rule *r = &cfg->rules[i];
    if ((r->ops & op) == 0 || !config_match(r, tseg, tlen, nt) || !config_who_matches(r, cred))
      continue;
    snprintf(why, whylen, "%s:%u", cfg->path != NULL ? cfg->path : "config", r->line);
    return r->allow ? 1 : 0;
  }
  snprintf(why, whylen, "default policy");
  return -1;
}

/* json: JSON <-> msgpack with libjansson. See json.h. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmbus/msgpack.h"

static int cj_pack(msgpack_packer *pk, const json_t *v) {
  const char *key;
  json_t *item;
  size_t i;
  int rv = 0;

  switch (json_typeof(v)) {
  case JSON_OBJECT:
    rv = msgpack_pack_map(pk, json_object_size(v));
    json_object_foreach((json_t *)v, key, item) {
      size_t n = strlen(key);
      if (rv == 0)
        rv = msgpack_pack_str_with_body(pk, key, n);
      if (rv == 0)
        rv = cj_pack(pk, item);
    }
    return rv;
  case JSON_ARRAY:
    rv = msgpack_pack_array(pk, json_array_size(v));
    json_array_foreach(v, i, item) {
      if (rv == 0)
        rv = cj_pack(pk, item);
    }
    return rv;
  case JSON_STRING:
    return msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
  case JSON_INTEGER:
    return msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
  case JSON_REAL:
    return msgpack_pack_double(pk, json_real_value(v));
  case JSON_TRUE:
    return msgpack_pack_true(pk);
  case JSON_FALSE:
    return msgpack_pack_false(pk);
  case JSON_NULL:
  default:
    return msgpack_pack_nil(pk);
  }
}

int cli_json_to_msgpack(const char *text, size_t len, msgpack_sbuffer *out, char *err,
                        size_t errlen) {
  json_error_t je;
  msgpack_packer pk;
  json_t *v;
  int rv;

  v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (v == NULL) {
    snprintf(err, errlen, "line %d, column %d (byte %d): %s", je.line, je.column, je.position,
             je.text);
    return -1;
  }
  msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
  rv = cj_pack(&pk, v);
  json_decref(v);
  if (rv != 0) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  return 0;
}

static json_t *cj_hex(const void *data, size_t len) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *p = data;
  char *s = malloc(len * 2 + 1);
  json_t *v;
  size_t i;

  if (s == NULL)
    return NULL;
  for (i = 0; i < len; i++) {
    s[2 * i] = digits[p[i] >> 4];
    s[2 * i + 1] = digits[p[i] & 15];
  }
  v = json_stringn(s, len * 2);
  free(s);
  return v;
}

/* A JSON string for msgpack str bytes: as they are when they are UTF-8,
 * else with every byte outside ASCII replaced by U+FFFD. */
static json_t *cj_str(const char *p, size_t n) {
  json_t *v = json_stringn(p, n);
  char *s;
  size_t i, o = 0;

  if (v != NULL)
    return v;
  if ((s = malloc(n * 3 + 1)) == NULL)
    return NULL;
  for (i = 0; i < n; i++) {
    if ((unsigned char)p[i] < 0x80) {
      s[o++] = p[i];
    } else {
      memcpy(s + o, "\xef\xbf\xbd", 3);
      o += 3;
    }
  }
  v = json_stringn(s, o);
  free(s);
  return v;
}

json_t *cli_json_from_msgpack(const msgpack_object *o) {
  json_t *v = NULL;
  uint32_t i;

  switch (o->type) {
  case MSGPACK_OBJECT_NIL:
    return json_null();
  case MSGPACK_OBJECT_BOOLEAN:
    return json_boolean(o->via.boolean);
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    if (o->via.u64 > (uint64_t)INT64_MAX)
      return json_real((double)o->via.u64);
    return json_integer((json_int_t)o->via.u64);
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    return json_integer((json_int_t)o->via.i64);
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
  case MSGPACK_OBJECT_STR:
    return cj_str(o->via.str.ptr, o->via.str.size);
  case MSGPACK_OBJECT_BIN:
    return cj_hex(o->via.bin.ptr, o->via.bin.size);
  case MSGPACK_OBJECT_EXT:
    v = json_object();
    if (v != NULL) {
      json_object_set_new(v, "ext", json_integer(o->via.ext.type));
      json_object_set_new(v, "hex", cj_hex(o->via.ext.ptr, o->via.ext.size));
    }
    return v;
  case MSGPACK_OBJECT_ARRAY:
    if ((v = json_array()) == NULL)
      return NULL;
    for (i = 0; i < o->via.array.size; i++) {
      if (json_array_append_new(v, cli_json_from_msgpack(&o->via.array.ptr[i])) != 0) {
        json_decref(v);
        return NULL;
      }
    }
    return v;
  case MSGPACK_OBJECT_MAP:
    if ((v = json_object()) == NULL)
      return NULL;
    for (i = 0; i < o->via.map.size; i++) {
      const msgpack_object *k = &o->via.map.ptr[i].key;
      json_t *val = cli_json_from_msgpack(&o->via.map.ptr[i].val);
      char *key;
      int rv;
      if (k->type == MSGPACK_OBJECT_STR) {
        key = malloc(k->via.str.size + 1);
        if (key != NULL) {
          memcpy(key, k->via.str.ptr, k->via.str.size);
          key[k->via.str.size] = '\0';
        }
      } else {
        json_t *kj = cli_json_from_msgpack(k);
        key = kj != NULL ? json_dumps(kj, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(kj);
      }
      /* jansson refuses keys that are not UTF-8: such an entry is kept
       * under a key with the bytes replaced. */
      rv = key != NULL && val != NULL ? json_object_set(v, key, val) : -1;
      if (rv != 0 && key != NULL && val != NULL) {
        json_t *ks = cj_str(key, strlen(key));
        rv = ks != NULL ? json_object_set(v, json_string_value(ks), val) : -1;
        json_decref(ks);
      }
      json_decref(val);
      free(key);
      if (rv != 0) {
        json_decref(v);
        return NULL;
      }
    }
    return v;
  default:
    return json_null();
  }
}

char *cli_json_payload_text(const void *data, size_t len) {
  msgpack_unpacked up;
  json_t *v;
  char *s = NULL;

  msgpack_unpacked_init(&up);
  if (shmbus_msgpack_unpack(data, len, &up) == 0 && (v = cli_json_from_msgpack(&up.data)) != NULL) {
    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
  }
  msgpack_unpacked_destroy(&up);
  return s;
}

/* json: JSON <-> msgpack for the CLI, with libjansson (no hand-written
 * parser). JSON objects become msgpack maps with str keys, arrays arrays,
 * integers int, reals float64, strings str, true/false/null themselves.
 * Back from msgpack: bin becomes a string of hex digits, ext an object
 * {"ext": TYPE, "hex": "..."}, a non-string map key the JSON text of that
 * key, an unsigned integer beyond 2^63-1 and a non-finite float are
 * written as reals or null (JSON has nothing closer). */
#ifndef SHMBUS_CLI_JSON_H
#define SHMBUS_CLI_JSON_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

/* Parses JSON text (any value at the top, not only objects) and packs it
 * into `out` (initialised by the caller). Returns 0, or -1 with a message
 * in err that names the position: "line L, column C (byte P): why". */
int cli_json_to_msgpack(const char *text, size_t len, msgpack_sbuffer *out, char *err,
                        size_t errlen);

/* Converts an unpacked msgpack object into a new JSON value (the caller
 * json_decref's it), or NULL when out of memory. */
json_t *cli_json_from_msgpack(const msgpack_object *o);

/* Converts a payload to compact one-line JSON text (malloc'd; the caller
 * frees it), or NULL if the payload is not one well-formed msgpack object. */
char *cli_json_payload_text(const void *data, size_t len);

#endif /* SHMBUS_CLI_JSON_H */

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "error_table.h"
#include "shmbus/shmbus.h"

Test(error, every_code_has_a_distinct_name_and_text) {
  /* The list comes from the one table that also generates the enum and the
   * texts, so a code added there is checked here without editing this test. */
  static const int codes[] = {
#define ERROR_TEST_CODE(name, off, msg) SHMBUS_##name,
      SHMBUS_ERRNO_MAP(ERROR_TEST_CODE)
#undef ERROR_TEST_CODE
  };
  size_t i, j;
  for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    cr_assert(codes[i] < -200, "bus codes stay clear of errno values");
    cr_assert_str_neq(shmbus_strerror(codes[i]), "unknown error");
    cr_assert_eq(strncmp(shmbus_err_name(codes[i]), "SHMBUS_E", 8), 0);
    for (j = 0; j < i; j++) {
      cr_assert_neq(codes[i], codes[j]);
      cr_assert_str_neq(shmbus_err_name(codes[i]), shmbus_err_name(codes[j]));
    }
  }
}

Test(error, errno_codes_and_unknown) {
  cr_assert_str_eq(shmbus_err_name(-EAGAIN), "EAGAIN");
  cr_assert_str_eq(shmbus_err_name(SHMBUS_EAGAIN), "EAGAIN");
  cr_assert_str_eq(shmbus_strerror(-ENOMEM), "out of memory");
  cr_assert_str_eq(shmbus_strerror(12345), "unknown error");
  cr_assert_str_eq(shmbus_err_name(-99999), "UNKNOWN");
  cr_assert_str_eq(shmbus_strerror(0), "success");
}

/* Every errno value the library returns (the table that generates the
 * texts), with a distinct name and a text; among them the codes the API
 * documents as results (bus.h, msgpack.h: -ENAMETOOLONG, -EBADMSG...). */
Test(error, every_errno_code_has_a_distinct_name_and_text) {
  static const struct {
    int code;
    const char *name;
  } codes[] = {
#define ERROR_TEST_ERRNO(name, msg) {-name, #name},
      SHMBUS__ERRNO_TABLE(ERROR_TEST_ERRNO)
#undef ERROR_TEST_ERRNO
  };
  size_t i, j;
  for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    cr_assert(codes[i].code < 0 && codes[i].code > -200, "%s is an errno value", codes[i].name);
    cr_assert_str_neq(shmbus_strerror(codes[i].code), "unknown error", "%s", codes[i].name);
    cr_assert_str_eq(shmbus_err_name(codes[i].code), codes[i].name);
    for (j = 0; j < i; j++)
      cr_assert_neq(codes[i].code, codes[j].code, "%s twice", codes[i].name);
  }
}

Test(error, version_string) {
  cr_assert_str_eq(shmbus_version(), "0.1.0");
}

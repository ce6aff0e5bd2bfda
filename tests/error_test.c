#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

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

/* Codes the API documents as results (see bus.h, msgpack.h). */
Test(error, documented_errno_codes_have_texts) {
  static const int codes[] = {-ENAMETOOLONG, -EBADMSG, -EMSGSIZE, -ETIMEDOUT, -EMFILE, -EBADFD};
  size_t i;
  for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    cr_assert_str_neq(shmbus_strerror(codes[i]), "unknown error", "code %d", codes[i]);
    cr_assert_str_neq(shmbus_err_name(codes[i]), "UNKNOWN", "code %d", codes[i]);
  }
}

Test(error, version_string) {
  cr_assert_str_eq(shmbus_version(), "0.1.0");
}

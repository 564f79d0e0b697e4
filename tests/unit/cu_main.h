/* SPDX-License-Identifier: BSD-3-Clause */
/* The one main() every CUnit test program shares: run the suite, exit 1 on any failure. */
#ifndef FP_TESTS_CU_MAIN_H
#define FP_TESTS_CU_MAIN_H

#include <CUnit/Basic.h>

struct fp_cu_test {
    const char *name;
    void (*fn)(void);
};

static inline int
fp_cu_run(const char *suite, const struct fp_cu_test *tests)
{
    CU_pSuite s;
    unsigned  failed;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 2;
    }
    s = CU_add_suite(suite, NULL, NULL);
    for (; tests->name != NULL; tests++) {
        CU_add_test(s, tests->name, tests->fn);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}

#endif /* FP_TESTS_CU_MAIN_H */

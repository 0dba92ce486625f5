/* cu_main.h - one CUnit suite per program; ends with "N passed, N failed". */
#ifndef IG_CU_MAIN_H
#define IG_CU_MAIN_H

#include <stdio.h>

#include <CUnit/Basic.h>

/* Runs the suite's tests between init and cleanup (either may be NULL; a
 * failing init fails every test) and prints CUnit's summary and a closing
 * line. Returns the exit status: 0 when every test passed. */
static int
cu_run_fixture(const char *suite, CU_TestInfo *tests, CU_InitializeFunc init,
    CU_CleanupFunc cleanup)
{
	CU_SuiteInfo suites[] = {
		{ (char *)suite, init, cleanup, NULL, NULL, tests },
		CU_SUITE_INFO_NULL
	};
	unsigned run, failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	if (CU_register_suites(suites) != CUE_SUCCESS) {
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	run = CU_get_number_of_tests_run();
	failed = CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	printf("%s: %u passed, %u failed\n", suite, run - failed, failed);
	if (CU_get_number_of_suites_failed() > 0) {
		printf("%s: suite set-up or clean-up failed\n", suite);
		failed++;
	}
	return failed == 0 && run > 0 ? 0 : 1;
}

static __attribute__((unused)) int
cu_run(const char *suite, CU_TestInfo *tests)
{
	return cu_run_fixture(suite, tests, NULL, NULL);
}

#endif

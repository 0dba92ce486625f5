/* test_migrate.c - which files are migrations. */
#include "cu_main.h"
#include "migrate.h"

static void
test_migrate_file_names(void)
{
	CU_ASSERT_TRUE(migrate_is_migration_name("001_auth.sql"));
	CU_ASSERT_TRUE(migrate_is_migration_name("0042_add-index.sql"));
	CU_ASSERT_FALSE(migrate_is_migration_name("storage_policies.sql"));
	CU_ASSERT_FALSE(migrate_is_migration_name("01_short.sql"));
	CU_ASSERT_FALSE(migrate_is_migration_name("001_.sql"));
	CU_ASSERT_FALSE(migrate_is_migration_name("001_auth.sql~"));
	CU_ASSERT_FALSE(migrate_is_migration_name("001_auth.SQL"));
	CU_ASSERT_FALSE(migrate_is_migration_name("001_a b.sql"));
	CU_ASSERT_FALSE(migrate_is_migration_name("001auth.sql"));
	CU_ASSERT_FALSE(migrate_is_migration_name("README.md"));
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "file_names", test_migrate_file_names },
		CU_TEST_INFO_NULL
	};

	return cu_run("migrate", tests);
}

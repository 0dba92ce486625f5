/* test_uuid.c - the text form of a UUID. */
#include <string.h>

#include "cu_main.h"
#include "uuid.h"

static void
test_uuid_valid_accepts_hex_in_groups(void)
{
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1a7"), 1);
	CU_ASSERT_EQUAL(uuid_valid("00000000-0000-0000-0000-000000000000"), 1);
	CU_ASSERT_EQUAL(uuid_valid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"), 1);
	CU_ASSERT_EQUAL(uuid_valid("7F9C2BA4-e88f-4272-8C7A-4ad2a2d4b1a7"), 1);
	/* Any version and variant nibble: only the shape is checked. */
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-f272-ff7a-4ad2a2d4b1a7"), 1);
}

static void
test_uuid_valid_rejects_other_lengths(void)
{
	CU_ASSERT_EQUAL(uuid_valid(""), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1a"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1a7a"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1a7 "), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1a7\n"), 0);
	/* Stops at the NUL of a short string, even one cut at a dash. */
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a-"), 0);
}

static void
test_uuid_valid_rejects_other_forms(void)
{
	CU_ASSERT_EQUAL(uuid_valid("not-a-uuid"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4e88f42728c7a4ad2a2d4b1a7"), 0);
	CU_ASSERT_EQUAL(uuid_valid("{7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1a}"), 0);
	CU_ASSERT_EQUAL(uuid_valid("urn:uuid:7f9c2ba4-e88f-4272-8c7a-4ad2a2d4"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1ag"), 0);
	CU_ASSERT_EQUAL(uuid_valid("g7f9c2ba-e88f-4272-8c7a-4ad2a2d4b1a7"), 0);
	/* Dashes misplaced, doubled or replaced. */
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4e-88f-4272-8c7a-4ad2a2d4b1a7"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a4-ad2a2d4b1a7"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4_e88f_4272_8c7a_4ad2a2d4b1a7"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a--ad2a2d4b1a7"), 0);
	CU_ASSERT_EQUAL(uuid_valid("------------------------------------"), 0);
	/* Hex digits only: no spaces, signs or other letters among them. */
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1 7"), 0);
	CU_ASSERT_EQUAL(uuid_valid("+f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1a7"), 0);
	CU_ASSERT_EQUAL(uuid_valid("7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1\xc3\xa9"), 0);
}

static void
test_uuid_valid_rejects_embedded_nul(void)
{
	char s[40];

	memcpy(s, "7f9c2ba4-e88f-4272-8c7a-4ad2a2d4b1a7", 37);
	s[20] = '\0';
	CU_ASSERT_EQUAL(uuid_valid(s), 0);
}

int
main(void)
{
	CU_TestInfo tests[] = {
		{ "valid_accepts_hex_in_groups", test_uuid_valid_accepts_hex_in_groups },
		{ "valid_rejects_other_lengths", test_uuid_valid_rejects_other_lengths },
		{ "valid_rejects_other_forms", test_uuid_valid_rejects_other_forms },
		{ "valid_rejects_embedded_nul", test_uuid_valid_rejects_embedded_nul },
		CU_TEST_INFO_NULL
	};

	return cu_run("uuid", tests);
}

// gtest assertions on absl::Status and absl::StatusOr for the store tests:
// the failure message names the expression and its status.

#ifndef RATCHET_COORDINATOR_STORE_STATUS_TEST_MACROS_H_
#define RATCHET_COORDINATOR_STORE_STATUS_TEST_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

#define ASSERT_OK(expr)                                  \
  do {                                                   \
    const absl::Status _s = (expr);                      \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s;         \
  } while (0)
#define EXPECT_OK(expr)                                  \
  do {                                                   \
    const absl::Status _s = (expr);                      \
    EXPECT_TRUE(_s.ok()) << #expr << ": " << _s;         \
  } while (0)
#define TEST_CONCAT_INNER(a, b) a##b
#define TEST_CONCAT(a, b) TEST_CONCAT_INNER(a, b)
#define ASSERT_OK_AND_ASSIGN_IMPL(lhs, tmp, expr)            \
  auto tmp = (expr);                                         \
  ASSERT_TRUE(tmp.ok()) << #expr << ": " << tmp.status();    \
  lhs = std::move(*tmp)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(lhs, TEST_CONCAT(_t_, __LINE__), expr)

#endif  // RATCHET_COORDINATOR_STORE_STATUS_TEST_MACROS_H_

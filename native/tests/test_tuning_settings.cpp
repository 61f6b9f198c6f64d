// The measurement overrides (core/tuning_settings.hpp): defaults without variables, each accepted spelling, and
// values that do not parse leave the default in place.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/tuning_settings.hpp"

using namespace moecutlass;

namespace {

std::map<std::string, std::string>& variables() {
  static std::map<std::string, std::string> values;
  return values;
}

const char* fake_getenv(const char* name) {
  auto found = variables().find(name);
  return found == variables().end() ? nullptr : found->second.c_str();
}

TuningSettings read(std::map<std::string, std::string> values) {
  variables() = std::move(values);
  return read_tuning_settings(&fake_getenv);
}

}  // namespace

TEST(TuningSettings, DefaultsWithoutVariables) {
  const TuningSettings settings = read({});
  EXPECT_EQ(settings.raster_order, 'M');
  EXPECT_EQ(settings.max_swizzle, 2);
  EXPECT_TRUE(settings.programmatic);
  EXPECT_TRUE(settings.forked);
  EXPECT_EQ(settings.cublas_call, 0);
}

TEST(TuningSettings, EachAcceptedValue) {
  for (const char* raster : {"M", "N", "H"}) EXPECT_EQ(read({{"MOECUTLASS_RASTER", raster}}).raster_order, raster[0]);
  for (int swizzle : {1, 2, 4, 8}) {
    EXPECT_EQ(read({{"MOECUTLASS_SWIZZLE", std::to_string(swizzle)}}).max_swizzle, swizzle);
  }
  EXPECT_FALSE(read({{"MOECUTLASS_PDL", "0"}}).programmatic);
  EXPECT_FALSE(read({{"MOECUTLASS_ES_LAUNCH", "pdl"}}).forked);
  EXPECT_EQ(read({{"MOECUTLASS_CUBLAS_CALL", "grouped"}}).cublas_call, 'g');
  EXPECT_EQ(read({{"MOECUTLASS_CUBLAS_CALL", "loop"}}).cublas_call, 'l');
}

TEST(TuningSettings, UnparsableValuesKeepTheDefault) {
  const TuningSettings settings = read({{"MOECUTLASS_RASTER", "Mx"},
                                        {"MOECUTLASS_SWIZZLE", "16"},
                                        {"MOECUTLASS_PDL", "no"},
                                        {"MOECUTLASS_ES_LAUNCH", "forked"},
                                        {"MOECUTLASS_CUBLAS_CALL", "Loop"}});
  EXPECT_EQ(settings.raster_order, 'M');
  EXPECT_EQ(settings.max_swizzle, 2);
  EXPECT_TRUE(settings.programmatic);
  EXPECT_TRUE(settings.forked);
  EXPECT_EQ(settings.cublas_call, 0);
  EXPECT_EQ(read({{"MOECUTLASS_SWIZZLE", "3"}}).max_swizzle, 2);
  EXPECT_EQ(read({{"MOECUTLASS_RASTER", ""}}).raster_order, 'M');
}

// The run-time NCCL loader (nccl/nccl_loader.hpp): every failure names what was tried and why (not found, not NCCL,
// older than 2.18, an entry point missing), the search order, and a loaded library's error strings in NCCL errors.
// Stand-in libraries (fake_nccl.c, built three ways by CMake) play NCCL; where a real NCCL 2.18+ is installed (the
// GPU machine) every entry point must resolve from it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "nccl/nccl_loader.hpp"

namespace moecutlass {
namespace {

TEST(NcclLoader, AMissingLibraryIsNamedWithTheReason) {
  nccl::Api api;
  std::string error;
  ASSERT_FALSE(nccl::try_load({"libmoecutlass-no-such-nccl.so.2", "/nonexistent/dir/lib/libnccl.so.2"}, api, error));
  EXPECT_NE(error.find("libmoecutlass-no-such-nccl.so.2"), std::string::npos) << error;
  EXPECT_NE(error.find("/nonexistent/dir/lib/libnccl.so.2"), std::string::npos) << error;
  EXPECT_NE(error.find("2.18"), std::string::npos) << error;
  EXPECT_NE(error.find("NCCL_HOME"), std::string::npos) << error;
  EXPECT_EQ(api.all_reduce, nullptr);
  EXPECT_TRUE(api.path.empty());
}

TEST(NcclLoader, ALibraryThatIsNotNcclIsRejected) {
  nccl::Api api;
  std::string error;
  ASSERT_FALSE(nccl::try_load({"libm.so.6"}, api, error));
  EXPECT_NE(error.find("libm.so.6: not NCCL"), std::string::npos) << error;
}

TEST(NcclLoader, AnNcclOlderThan218IsRejectedWithItsVersion) {
  nccl::Api api;
  std::string error;
  ASSERT_FALSE(nccl::try_load({MOECUTLASS_FAKE_NCCL_OLD}, api, error));
  EXPECT_NE(error.find(std::string(MOECUTLASS_FAKE_NCCL_OLD) + ": NCCL 2.15.5 is older than 2.18"), std::string::npos)
      << error;
  EXPECT_EQ(api.get_version, nullptr);
}

TEST(NcclLoader, AMissingEntryPointIsNamed) {
  nccl::Api api;
  std::string error;
  ASSERT_FALSE(nccl::try_load({MOECUTLASS_FAKE_NCCL_PARTIAL}, api, error));
  EXPECT_NE(error.find("NCCL 2.19.3 lacks ncclReduceScatter"), std::string::npos) << error;
}

TEST(NcclLoader, TheFirstUsableCandidateIsLoadedAndEveryEntryPointResolved) {
  nccl::Api api;
  std::string error;
  ASSERT_TRUE(nccl::try_load({"libmoecutlass-no-such-nccl.so.2", MOECUTLASS_FAKE_NCCL_OLD, MOECUTLASS_FAKE_NCCL_GOOD},
                             api, error))
      << error;
  EXPECT_TRUE(error.empty()) << error;
  EXPECT_EQ(api.version, 21801);
  EXPECT_NE(api.path.find("fake_nccl_good"), std::string::npos) << api.path;
  for (const void* entry : {reinterpret_cast<const void*>(api.get_version), reinterpret_cast<const void*>(api.get_unique_id),
                            reinterpret_cast<const void*>(api.comm_init_rank), reinterpret_cast<const void*>(api.comm_init_all),
                            reinterpret_cast<const void*>(api.comm_destroy), reinterpret_cast<const void*>(api.all_reduce),
                            reinterpret_cast<const void*>(api.all_gather), reinterpret_cast<const void*>(api.reduce_scatter),
                            reinterpret_cast<const void*>(api.group_start), reinterpret_cast<const void*>(api.group_end),
                            reinterpret_cast<const void*>(api.error_string)}) {
    EXPECT_NE(entry, nullptr);
  }
  // The unique id travels by value through our declared 128-byte struct.
  nccl::UniqueId id{};
  ASSERT_EQ(api.get_unique_id(&id), nccl::kSuccess);
  EXPECT_EQ(static_cast<unsigned char>(id.internal[0]), 0x5a);
  EXPECT_EQ(static_cast<unsigned char>(id.internal[127]), 0x5a);
  // An NCCL failure names the call and NCCL's own error string.
  nccl::Comm comm = nullptr;
  const nccl::Result result = api.comm_init_rank(&comm, 1, id, 0);
  try {
    nccl::check(api, result, "ncclCommInitRank");
    FAIL() << "check accepted result " << result;
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), MC_STATUS_CUDA_ERROR);
    EXPECT_NE(std::string(e.what()).find("ncclCommInitRank failed: fake invalid usage (ncclResult_t 5)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(nccl::check(api, nccl::kSuccess, "ncclAllReduce"));
}

TEST(NcclLoader, SearchesTheSonameThenNcclHomeThenTheBuildsNccl) {
  const char* saved = std::getenv("NCCL_HOME");
  const std::string restore = saved != nullptr ? saved : "";
  setenv("NCCL_HOME", "/opt/some-nccl", 1);
  const std::vector<std::string> candidates = nccl::default_candidates();
  if (saved != nullptr) {
    setenv("NCCL_HOME", restore.c_str(), 1);
  } else {
    unsetenv("NCCL_HOME");
  }
  ASSERT_GE(candidates.size(), 2u);
  EXPECT_EQ(candidates[0], "libnccl.so.2");
  EXPECT_EQ(candidates[1], "/opt/some-nccl/lib/libnccl.so.2");
#if defined(MOECUTLASS_NCCL_LIBRARY_DIR)
  ASSERT_EQ(candidates.size(), 3u);
  EXPECT_EQ(candidates[2], std::string(MOECUTLASS_NCCL_LIBRARY_DIR) + "/libnccl.so.2");
#else
  EXPECT_EQ(candidates.size(), 2u);
#endif
}

TEST(NcclLoader, VersionTextSplitsTheVersionCode) {
  EXPECT_EQ(nccl::version_text(21803), "2.18.3");
  EXPECT_EQ(nccl::version_text(22703), "2.27.3");
  EXPECT_EQ(nccl::version_text(0), "0.0.0");
}

TEST(NcclLoader, AnInstalledNcclResolvesEveryEntryPoint) {
  nccl::Api api;
  std::string error;
  if (!nccl::try_load(nccl::default_candidates(), api, error)) {
    GTEST_SKIP() << "no NCCL 2.18+ on this machine: " << error;
  }
  std::cout << "NCCL " << nccl::version_text(api.version) << " from " << api.path << "\n";
  EXPECT_GE(api.version, nccl::kMinimumVersion);
  EXPECT_NE(api.all_reduce, nullptr);
  EXPECT_NE(api.reduce_scatter, nullptr);
  const char* success = api.error_string(nccl::kSuccess);
  ASSERT_NE(success, nullptr);
  EXPECT_GT(std::string(success).size(), 0u);
}

}  // namespace
}  // namespace moecutlass

// The libFuzzer entry point of one target, compiled once per target with BIDDING_FUZZ_TARGET set
// to its name (fuzz/CMakeLists.txt). The work is in bidding::fuzz::NAME_one (fuzz/targets/), which
// the unit tests call too.
#include <fuzz_targets.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#define BIDDING_FUZZ_CONCAT(a, b) a##b
#define BIDDING_FUZZ_ONE(name) BIDDING_FUZZ_CONCAT(name, _one)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    bidding::fuzz::BIDDING_FUZZ_ONE(BIDDING_FUZZ_TARGET)(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}
